from __future__ import annotations

import pytest

from tests.support.server import CertFiles
from webhook.cli import build_parser, main
from webhook.settings import Settings, SettingsError, parse_duration, settings_from_args


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
            ["--tls-min-version", "1.0"],
            "--tls-min-version='1.0' is invalid: expected 1.2 or 1.3 (TLS 1.0 and 1.1 are insecure and refused)",
        ),
        (["--tls-min-version", "1.1"], "--tls-min-version='1.1' is invalid"),
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
    assert main(["serve", "--tls-min-version", "1.0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pod-identity-webhook serve: --tls-min-version='1.0' is invalid")
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
    assert main(["serve", "--tls-cert", "/nonexistent.crt", "--tls-key", "/nonexistent.key"]) == 2
    assert capsys.readouterr().err == (
        "pod-identity-webhook serve: --tls-cert='/nonexistent.crt' is invalid: "
        "expected an existing PEM file\n"
    )


def test_version_flag_prints_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == "0.1.0"
