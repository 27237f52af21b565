from __future__ import annotations

import re

import pytest

from tests.support.server import CertFiles
from webhook import __version__
from webhook.cli import build_parser, main
from webhook.flags.gostyle import go_style
from webhook.flags.gostyle import long_options as _long_options
from webhook.flags.settings import Settings, SettingsError
from webhook.flags.shared import settings_from_args, upstream_warnings
from webhook.flags.values import parse_duration, parse_size


def settings_of(*argv: str) -> Settings:
    return settings_from_args(build_parser().parse_args(["serve", *argv]))


def test_defaults_match_upstream() -> None:
    s = settings_of()
    assert (s.port, s.metrics_port, s.annotation_prefix, s.token_audience) == (
        443,
        9999,
        "eks.amazonaws.com",
        "sts.amazonaws.com",
    )
    assert s.token_mount_path == "/var/run/secrets/eks.amazonaws.com/serviceaccount"
    assert (s.token_expiration, s.aws_default_region, s.sts_regional_endpoint) == (86400, "", False)
    assert (s.resync_period, s.service_account_lookup_grace_period, s.shutdown_grace_period) == (
        60.0,
        0.0,
        10.0,
    )
    assert s.container_credentials_full_uri == "http://169.254.170.23/v1/credentials"


@pytest.mark.parametrize(
    ("argv", "attribute", "value"),
    [
        (["--sts-regional-endpoint"], "sts_regional_endpoint", True),
        (["--sts-regional-endpoint=false"], "sts_regional_endpoint", False),
        (["--sts-regional-endpoint", "true"], "sts_regional_endpoint", True),
        (["--resync-period", "1m30s"], "resync_period", 90.0),
        (
            ["--service-account-lookup-grace-period", "250ms"],
            "service_account_lookup_grace_period",
            0.25,
        ),
        (["--token-expiration", "100"], "token_expiration", 600),
        (["--token-expiration=-5"], "token_expiration", 600),
        (["--tls-cipher-suites", "TLS_A, TLS_B"], "tls_cipher_suites", ("TLS_A", "TLS_B")),
        (["-v"], "log_level", "debug"),
        (["-v=4"], "log_level", "debug"),
        (["--v", "5"], "log_level", "debug"),
        (["--v=2"], "log_level", "info"),
        (
            ["--logtostderr", "--alsologtostderr=false", "--stderrthreshold", "2", "--vmodule=x=4"],
            "log_level",
            "info",
        ),
    ],
    ids=[
        "bool-bare",
        "bool-false",
        "bool-separate",
        "duration",
        "duration-ms",
        "expiration-raised",
        "negative-expiration-raised",
        "cipher-list",
        "verbose",
        "klog-v-equals",
        "klog-long-v",
        "klog-v-below-debug",
        "klog-flags-accepted",
    ],
)
def test_flags_parse_like_upstream(argv: list[str], attribute: str, value: object) -> None:
    assert getattr(settings_of(*argv), attribute) == value


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--tls-min-version", "1.4"],
            "--tls-min-version='1.4' is invalid: expected one of 1.0, VersionTLS10, 1.1, "
            "VersionTLS11, 1.2, VersionTLS12, 1.3, VersionTLS13",
        ),
        (
            ["--token-mount-path", "relative/path"],
            "--token-mount-path='relative/path' is invalid: expected an absolute path",
        ),
        (["--port", "70000"], "--port=70000 is invalid: expected a TCP port from 0 to 65535"),
        (["--annotation-prefix", "a/b"], "--annotation-prefix='a/b' is invalid"),
    ],
)
def test_bad_flag_values_name_flag_value_and_expected_form(argv: list[str], message: str) -> None:
    with pytest.raises(SettingsError) as error:
        settings_of(*argv)
    assert str(error.value).startswith(message)


def test_bad_flag_value_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--tls-min-version", "1.4"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pod-identity-webhook serve: --tls-min-version='1.4' is invalid")
    assert "\n" not in err


@pytest.mark.parametrize("text", ["", "5x", "ms", "1m-3s"])
def test_bad_durations_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_serve_outside_a_cluster_without_a_source_says_what_it_needs(
    capsys: pytest.CaptureFixture[str], cert_files: CertFiles
) -> None:
    # TLS flags are checked first, so give it a usable pair
    args = ["--tls-cert", str(cert_files.cert), "--tls-key", str(cert_files.key)]
    assert main(["serve", *args]) == 2
    err = capsys.readouterr().err
    assert "cannot load in-cluster config" in err
    assert "or --service-accounts-file PATH to run without a cluster" in err


def test_missing_tls_pair_stops_serve_before_any_source_is_read(
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = ["--tls-cert", "/nonexistent.crt", "--tls-key", "/nonexistent.key"]
    assert main(["serve", "--in-cluster=false", *missing]) == 2
    assert capsys.readouterr().err == (
        "pod-identity-webhook serve: --tls-cert='/nonexistent.crt' is invalid: "
        "expected an existing PEM file\n"
    )


def test_version_flag_prints_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == __version__


# Every flag upstream's main.go defines (flag.* calls) and klog v2.140.0's InitFlags adds
# (go.mod), in upstream's own spelling: `/webhook --help` lists exactly these.
UPSTREAM_FLAGS = {
    "port": "8443",
    "metrics-port": "9998",
    "kubeconfig": "/kubeconfig",
    "kube-api": "https://api:6443",
    "tls-key": "/k",
    "tls-cert": "/c",
    "tls-cipher-suites": "TLS_AES_128_GCM_SHA256",
    "tls-min-version": "VersionTLS12",
    "in-cluster": "false",
    "service-name": "svc",
    "namespace": "ns",
    "tls-secret": "secret",
    "annotation-prefix": "example.com",
    "token-audience": "aud",
    "token-mount-path": "/mnt",
    "token-expiration": "3600",
    "aws-default-region": "eu-west-1",
    "sts-regional-endpoint": "true",
    "watch-config-map": "false",
    "compose-role-arn": "false",
    "watch-container-credentials-config": "/cc.json",
    "container-credentials-audience": "aud2",
    "container-credentials-token-mount-path": "/mnt2",
    "container-credentials-token-volume-name": "vol",
    "container-credentials-token-path": "tok",
    "container-credentials-full-uri": "http://x",
    "version": "false",
    "enable-debugging-handlers": "false",
    "service-account-lookup-grace-period": "100ms",
    "resync-period": "2m",
    # klog
    "add_dir_header": "false",
    "alsologtostderr": "false",
    "alsologtostderrthreshold": "ERROR",
    "legacy_stderr_threshold_behavior": "true",
    "log_backtrace_at": "main.go:1",
    "log_dir": "",
    "log_file": "",
    "log_file_max_size": "1800",
    "logtostderr": "true",
    "one_output": "false",
    "skip_headers": "false",
    "skip_log_headers": "false",
    "stderrthreshold": "2",
    "v": "2",
    "vmodule": "",
}


@pytest.mark.parametrize("style", ["--flag=value", "-flag=value", "--flag value"])
def test_every_upstream_and_klog_flag_is_accepted_with_go_syntax(style: str) -> None:
    argv: list[str] = []
    for name, value in UPSTREAM_FLAGS.items():
        if style == "--flag=value":
            argv.append(f"--{name}={value}")
        elif style == "-flag=value":
            argv.append(f"-{name}={value}")
        else:
            argv += [f"--{name}", value]
    parser = build_parser()
    args = parser.parse_args(["serve", *go_style(argv, _long_options(parser, "serve"))])
    s = settings_from_args(args)
    assert (s.port, s.metrics_port, s.namespace, s.tls_min_version) == (8443, 9998, "ns", "1.2")
    assert (s.in_cluster, s.service_name, s.tls_secret) == (False, "svc", "secret")
    assert (s.token_expiration, s.resync_period, s.sts_regional_endpoint) == (3600, 120.0, True)


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("1.0", "1.2"),
        ("VersionTLS10", "1.2"),
        ("1.1", "1.2"),
        ("VersionTLS11", "1.2"),
        ("1.2", "1.2"),
        ("VersionTLS12", "1.2"),
        ("1.3", "1.3"),
        ("VersionTLS13", "1.3"),
        ("", "1.2"),
    ],
)
def test_tls_min_version_takes_upstreams_spellings_with_a_tls12_floor(
    spelling: str, expected: str
) -> None:
    assert settings_of(f"--tls-min-version={spelling}").tls_min_version == expected


def test_weakened_upstream_flags_are_named_in_start_up_warnings() -> None:
    args = build_parser().parse_args(
        [
            "serve",
            "--tls-min-version=1.0",
            "--token-expiration=60",
            "--in-cluster",
            "--logtostderr=false",
        ]
    )
    notes = upstream_warnings(args)
    assert [note.split(" ", 1)[0] for note in notes] == [
        "--tls-min-version=1.0:",
        "--token-expiration=60",
        "--in-cluster=true:",
        "klog's",
    ]
    assert upstream_warnings(build_parser().parse_args(["serve", "--logtostderr"])) == []


def test_upstream_defaults_for_its_own_flags() -> None:
    s = settings_of()
    assert (s.in_cluster, s.service_name, s.tls_secret, s.namespace) == (
        True,
        "pod-identity-webhook",
        "pod-identity-webhook",
        "eks",
    )
    assert s.bind_address == ""  # upstream's ":443": every interface, dual-stack


def test_in_cluster_default_without_certificate_files_names_what_to_use_instead(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--tls-cert", "/nonexistent.crt", "--tls-key", "/nonexistent.key"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pod-identity-webhook serve: --tls-cert='/nonexistent.crt' is invalid")
    assert "--in-cluster=true (upstream's default)" in err
    assert "--in-cluster=false --tls-cert PATH --tls-key PATH" in err
    assert "manifests/overlays/cert-manager" in err


@pytest.mark.parametrize(
    "argv", [["--version"], ["serve", "--version"], ["--in-cluster=false", "--version"]]
)
def test_version_on_the_server_prints_and_exits_0(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(argv)
    except SystemExit as exit_info:  # the top-level --version is argparse's
        code = int(exit_info.code or 0)
    assert code == 0
    assert capsys.readouterr().out.strip() == __version__


def test_no_subcommand_runs_serve_with_the_same_flags(
    capsys: pytest.CaptureFixture[str], cert_files: CertFiles
) -> None:
    # Same outcome as test_serve_outside_a_cluster_...: it is serve, reached without the word
    args = ["-in-cluster=false", "-tls-cert", str(cert_files.cert), f"-tls-key={cert_files.key}"]
    assert main(args) == 2
    assert "pod-identity-webhook serve: cannot load in-cluster config" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "flag", "expected"),
    [
        (["--shutdown-grace-period", "10x"], "--shutdown-grace-period", "e.g. 500ms, 60s, 1m30s"),
        (["--max-request-bytes", "6 apples"], "--max-request-bytes", "6Mi, 6MiB"),
        (["--port", "https"], "--port", "digits"),
        (["--sts-regional-endpoint=maybe"], "--sts-regional-endpoint", "true or false"),
    ],
    ids=["duration", "size", "integer", "boolean"],
)
def test_bad_flag_syntax_prints_the_error_and_a_help_hint_not_the_usage(
    argv: list[str], flag: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", *argv])
    assert exit_info.value.code == 2
    error, hint = capsys.readouterr().err.splitlines()
    assert error.startswith(f"pod-identity-webhook serve: {flag}: ")
    assert repr(argv[-1].split("=")[-1]) in error
    assert expected in error
    assert hint == "Run 'pod-identity-webhook serve --help' for every flag and its form."


def test_a_missing_required_flag_is_reported_the_same_short_way(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["mutate"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "pod-identity-webhook mutate: the following arguments are required: -f/--filename",
        "Run 'pod-identity-webhook mutate --help' for every flag and its form.",
    ]


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("6291456", 6 * 1024 * 1024),
        ("6Mi", 6 * 1024 * 1024),
        ("6MiB", 6 * 1024 * 1024),
        ("6 MiB", 6 * 1024 * 1024),
        ("32Ki", 32 * 1024),
        ("32KiB", 32 * 1024),
        ("1.5Mi", 1536 * 1024),
        ("1Gi", 1024**3),
        ("6M", 6_000_000),
        ("6MB", 6_000_000),
        ("100k", 100_000),
        ("2048B", 2048),
    ],
)
def test_sizes_are_read_as_the_docs_write_them(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "Mi", "6x", "6 Mi B", "1.5", "-1Mi"])
def test_bad_sizes_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


@pytest.mark.parametrize(
    "flag", ["--max-request-bytes", "--max-inflight-request-bytes", "--max-header-bytes"]
)
def test_every_size_flag_takes_units(flag: str) -> None:
    attribute = flag.removeprefix("--").replace("-", "_")
    assert getattr(settings_of(flag, "64Ki"), attribute) == 64 * 1024
    assert getattr(settings_of(f"{flag}=64KiB"), attribute) == 64 * 1024
    assert getattr(settings_of(flag, "65536"), attribute) == 64 * 1024


def _help_sections(capsys: pytest.CaptureFixture[str], *command: str) -> dict[str, str]:
    """--help's groups: the title line of each, and the flags listed under it."""
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    sections: dict[str, str] = {}
    title = ""
    for line in capsys.readouterr().out.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            title = line
            sections[title] = ""
        elif title:
            sections[title] += line + "\n"
    return sections


def _section_of(sections: dict[str, str], flag: str) -> str:
    (title,) = [t for t, body in sections.items() if re.search(rf"^  (-\w, )?{flag}\b", body, re.M)]
    return title


def test_serve_help_groups_flags_by_what_they_do(capsys: pytest.CaptureFixture[str]) -> None:
    sections = _help_sections(capsys, "serve")
    assert _section_of(sections, "--version") == "options:"
    assert _section_of(sections, "--metrics-bind-address") == _section_of(
        sections, "--metrics-port"
    )
    assert "metrics" in _section_of(sections, "--metrics-bind-address")
    assert "bounds" not in _section_of(sections, "--metrics-bind-address")


@pytest.mark.parametrize("command", ["mutate", "doctor"])
def test_offline_commands_take_n_namespace_as_kubectl_does(command: str) -> None:
    for flags in (["-n", "team-a"], ["--namespace", "team-a"], ["--namespace=team-a"]):
        args = build_parser().parse_args([command, "-f", "pod.yaml", *flags])
        assert args.pod_namespace == "team-a"
        # the pod's namespace is not the webhook's own (serve --namespace, Settings.namespace)
        assert settings_from_args(args).namespace == Settings().namespace
