"""What the docs name exists: every metric they mention is one the server exposes, every flag
one of our commands' --help lists, and the few values they spell out are the code's."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from tests.conftest import ROOT
from tests.support.admission import APP_FLAGS, review
from tests.support.inprocess import serve_in_process
from webhook.cli import build_parser, main
from webhook.sources.kube.watching import Restart

DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
MONITORING = ROOT / "manifests" / "components" / "monitoring"
METRIC_SOURCES = [*DOCS, *sorted(MONITORING.iterdir())]
JSON = {"Content-Type": "application/json"}

# Metric names are ours (pod_identity_webhook_*), upstream's (http_request_*) or the runtime's
# (process_*, python_*); any other name ending in _total is taken for a metric too, so that an
# abbreviated name ("config_reloads_total") is caught. `process_*`-style wildcards are not names.
_METRIC = re.compile(
    r"(?<![\w/.-])(?:pod_identity_webhook_\w+|http_request_\w+|process_\w+|python_\w+|[a-z]\w*_total)\b"
)
# A list that starts with a full name may go on with `_rest` (docs/upstream.md's table).
# A bare suffix (`_total`, `_created`) is not one.
_ABBREVIATED = re.compile(r"(?<=`)_[a-z]+_\w+(?=`)")
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


# -- metrics -------------------------------------------------------------------------------


def _mentioned_metrics() -> dict[str, set[str]]:
    """metric name -> the files that mention it"""
    found: dict[str, set[str]] = {}
    for path in METRIC_SOURCES:
        for line in path.read_text().splitlines():
            names = _METRIC.findall(line)
            if "`pod_identity_webhook_" in line:
                names += ["pod_identity_webhook" + short for short in _ABBREVIATED.findall(line)]
            for name in names:
                if not name.endswith("_"):
                    found.setdefault(name, set()).add(_relative(path))
    return found


def _sample_names(exposition: str) -> dict[str, set[frozenset[str]]]:
    """series name -> the label-name sets it is exposed with"""
    series: dict[str, set[frozenset[str]]] = {}
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):  # a histogram's or summary's family name
            series.setdefault(line.split()[2], set())
        if not line or line.startswith("#"):
            continue
        match = re.match(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? ", line)
        assert match, line
        labels = frozenset(re.findall(r'(\w+)="', match.group(2) or "")) - {"le", "quantile"}
        series.setdefault(match.group(1), set()).add(labels)
    return series


def _declared_names(family: Any) -> list[str]:
    """The series a family with no sample yet will be exposed as, by its type."""
    if family.type == "counter":
        return [family.name + "_total"]
    if family.type in ("histogram", "summary"):
        return [family.name, *(family.name + suffix for suffix in _HISTOGRAM_SUFFIXES)]
    return [family.name]


@pytest.fixture(scope="module")
def exposed() -> dict[str, set[frozenset[str]]]:
    """What /metrics shows after admissions of each kind: mutated, ServiceAccount not found,
    and a pod sent to Fargate; plus the families that only an event this process cannot cause
    here (a watch restart, a skipped object) would show, as their type names them."""
    profiles = str(ROOT / "examples" / "fargate-profiles.yaml")
    with serve_in_process(*APP_FLAGS, "--fargate-profiles", profiles) as webhook:
        webhook.wait_ready()
        with webhook.client() as client:
            for path, body in (
                ("/mutate", review("team-a", "app")),
                ("/mutate", review("team-a", "nobody")),
                ("/mutate-fargate", review("batch-1", "app")),
            ):
                answer = client.post(path, content=orjson.dumps(body), headers=JSON)
                assert answer.status_code == 200, answer.text
        series = _sample_names(webhook.metrics("/metrics").text)
        for family in webhook.service.metrics.registry.collect():
            if not family.samples:
                for name in _declared_names(family):
                    series.setdefault(name, set())
    return series


def test_the_admissions_gave_the_labelled_families_their_series(
    exposed: dict[str, set[frozenset[str]]],
) -> None:
    # the fixture's admissions did reach the labelled families (else the test below would
    # only compare the docs with declarations)
    for name in (
        "http_request_count",
        "pod_identity_webhook_pod_count",
        "pod_identity_webhook_missing_sa_count",
        "pod_identity_webhook_fargate_pods_scheduled_total",
        "pod_identity_webhook_request_duration_seconds_bucket",
    ):
        assert exposed.get(name), name


def test_every_metric_the_docs_and_alerts_name_is_exposed(
    exposed: dict[str, set[frozenset[str]]],
) -> None:
    unknown = {
        name: sorted(files) for name, files in _mentioned_metrics().items() if name not in exposed
    }
    assert not unknown, f"named in the docs but not exposed: {unknown}"


def _documented_labels() -> Iterator[tuple[str, frozenset[str], str]]:
    """(metric, label names, file) from `name{a,b}` in prose and production.md's table."""
    for path in DOCS:
        text = path.read_text()
        for name, labels in re.findall(r"`(\w+)\{([\w,]+)\}`", text):
            yield name, frozenset(labels.split(",")), _relative(path)
    table_row = re.compile(r"^\| `(\w+)` \| [\w¹ ]+ \| ([^|]*) \|", re.M)
    production = ROOT / "docs" / "production.md"
    for name, labels in table_row.findall(production.read_text()):
        yield name, frozenset(re.findall(r"`(\w+)`", labels)), _relative(production)


def test_documented_labels_are_the_exposed_ones(
    exposed: dict[str, set[frozenset[str]]],
) -> None:
    rows = list(_documented_labels())
    assert len(rows) > 10
    checked = 0
    for name, labels, where in rows:
        candidates = [name, name + "_bucket", name + "_total"]
        label_sets = set().union(*(exposed.get(n, set()) for n in candidates))
        if label_sets:  # families with series: their labels must be the documented ones
            assert label_sets == {labels}, (where, name, label_sets, labels)
            checked += 1
    assert checked >= 5


def test_the_documented_watch_restart_reasons_are_the_codes() -> None:
    row = next(
        line
        for line in (ROOT / "docs" / "production.md").read_text().splitlines()
        if line.startswith("| `pod_identity_webhook_watch_restarts_total`")
    )
    described = row.split("|")[4]
    reasons = set(re.findall(r"`(\w+)` \(", described))
    assert reasons == {reason.value for reason in Restart}
    cluster = (ROOT / "docs" / "cluster.md").read_text()
    for reason in Restart:
        assert f"`{reason.value}`" in cluster


# -- flags ---------------------------------------------------------------------------------


def _command_paths() -> list[tuple[str, ...]]:
    """Every command and subcommand: (), ("serve",), ..., ("oidc", "bundle"), ..."""
    paths: list[tuple[str, ...]] = []

    def walk(parser: Any, path: tuple[str, ...]) -> None:
        paths.append(path)
        for action in parser._actions:
            if hasattr(action, "choices") and isinstance(action.choices, dict):
                for name, sub in action.choices.items():
                    walk(sub, (*path, name))

    walk(build_parser(), ())
    return paths


def _help_flags(capsys: pytest.CaptureFixture[str], path: tuple[str, ...]) -> frozenset[str]:
    """The long flags `pod-identity-webhook PATH --help` lists in its option lines."""
    with pytest.raises(SystemExit):
        main([*path, "--help"])
    flags: set[str] = set()
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("  -"):
            invocation = line.strip().split("  ")[0]
            flags.update(re.findall(r"--[\w-]+", invocation))
    return frozenset(flags)


_HELP_FLAGS: dict[tuple[str, ...], frozenset[str]] = {}


@pytest.fixture
def flags_of(capsys: pytest.CaptureFixture[str]) -> dict[tuple[str, ...], frozenset[str]]:
    """Each command's --help flags, read once per worker (capsys is per test, so no module
    fixture can read them)."""
    if not _HELP_FLAGS:
        for path in _command_paths():
            _HELP_FLAGS[path] = _help_flags(capsys, path)
    return _HELP_FLAGS


# Flags of other programs that the docs name in prose or in YAML rather than on a command line
# of theirs (command lines of other programs are skipped: see _segments), each with its owner.
FOREIGN_FLAGS = {
    "--service-account-issuer": "kube-apiserver (docs/self-hosted.md, docs/deploy.md)",
    "--service-account-key-file": "kube-apiserver",
    "--service-account-signing-key-file": "kube-apiserver",
    "--api-audiences": "kube-apiserver",
    "--admission-control-config-file": "kube-apiserver",
    "--thumbprint-list": "aws iam create-open-id-connect-provider",
    "--client-id-list": "aws iam create-open-id-connect-provider",
    "--bound-object-kind": "kubectl create token",
    "--dry-run": "kubectl (server-side dry run in docs/deploy.md)",
    "--strict": "kubernetes-validate, kubeconform (docs/deploy.md)",
    "--server-arg": "k3d (docs/self-hosted.md)",
    "--no-deps": "pip, in the image build (docs/deploy.md)",
    "--read-only": "docker run, as the image test runs it (docs/deploy.md)",
    "--user": "docker run",
    "--cap-drop": "docker run",
    "--acl": "aws s3 (docs/oidc.md: what the bucket policy replaces)",
    "--workers": "uvicorn's; README.md says the webhook has none",
    "--flag": "the placeholder README.md and docs/upstream.md write for any flag",
    # python -m benchmarks (benchmarks/, docs/performance.md): the benchmark's own CLI
    "--rounds": "benchmarks",
    "--bodies": "benchmarks",
    "--concurrency": "benchmarks",
    "--number": "benchmarks",
    "--repeat": "benchmarks",
    "--json": "benchmarks",
    "--duration": "benchmarks",
    "--no-upstream": "benchmarks",
    "--latency": "wrk, which the benchmark runs",
}
OUR_PROGRAMS = ("pod-identity-webhook", "webhook")  # the console script; upstream's /webhook
# A command line of ours starts with the program, possibly as a path (.venv/bin/...) or
# `python -m webhook`.
_FLAG = re.compile(r"(?<![\w-])--[a-zA-Z][\w-]*")


def _code_spans(text: str) -> tuple[list[str], str]:
    """The markdown's fenced blocks and inline code, and the prose left once they are cut."""
    spans: list[str] = []

    def keep(match: re.Match[str]) -> str:
        spans.append(match.group(1))
        return " "

    prose = re.sub(r"^```[^\n]*\n(.*?)^```", keep, text, flags=re.S | re.M)
    prose = re.sub(r"`([^`\n]+)`", keep, prose)
    return spans, prose


def _segments(code: str) -> Iterator[list[str]]:
    """The simple commands of a code span: continuations joined, split at | ; && || $( ."""
    for line in code.replace("\\\n", " ").splitlines():
        for part in re.split(r"\|\||&&|[|;]|\$\(|`", line):
            try:
                words = shlex.split(part, comments=True)
            except ValueError:
                words = part.split()
            if words:
                yield words


def _our_command(words: list[str]) -> tuple[tuple[str, ...], list[str]] | None:
    """(subcommand path, the words after it) when `words` runs our CLI, else None. Prose
    also writes a subcommand alone (`mutate --help`, `bundle --thumbprint HEX`)."""
    while words and (words[0] in ("$", "sudo", "exec") or re.fullmatch(r"\w+=\S*", words[0])):
        words = words[1:]
    if len(words) >= 3 and words[0].startswith("python") and words[1:3] == ["-m", "webhook"]:
        words = ["webhook", *words[3:]]
    paths = _command_paths()
    if words and (words[0],) in paths:
        words = ["pod-identity-webhook", *words]
    elif words and ("oidc", words[0]) in paths:
        words = ["pod-identity-webhook", "oidc", *words]
    if not words or Path(words[0]).name not in OUR_PROGRAMS:
        return None
    rest = words[1:]
    if not rest or (rest[0],) not in paths:
        return ("serve",), rest  # no subcommand: serve's flags, as upstream's /webhook
    path: tuple[str, ...] = (rest[0],)
    if len(rest) > 1 and (rest[0], rest[1]) in paths:
        path = (rest[0], rest[1])
    return path, rest[len(path) :]


def _flag_name(word: str) -> str:
    return word.split("=", 1)[0]


def _doc_flag_problems(
    path: Path, text: str, flags_of: dict[tuple[str, ...], frozenset[str]]
) -> list[str]:
    ours = frozenset().union(*flags_of.values())
    problems: list[str] = []
    spans, prose = _code_spans(text)
    loose: list[str] = _FLAG.findall(prose)
    for span in spans:
        for words in _segments(span):
            command = _our_command(words)
            if command is None:
                if not re.fullmatch(r"[\w./-]+", words[0]) or words[0].startswith("-"):
                    # a YAML or JSON line (`- --flag=value`, `value: --flag`) or a flag alone
                    loose += [_flag_name(w) for w in words if _FLAG.fullmatch(_flag_name(w))]
                # else another program's command line (kubectl, aws, kind, helm, docker, make,
                # kube-apiserver ...): its flags are its own
                continue
            subcommand, rest = command
            for word in rest:
                flag = _flag_name(word)
                if _FLAG.fullmatch(flag) and flag not in flags_of[subcommand]:
                    problems.append(
                        f"{_relative(path)}: pod-identity-webhook {' '.join(subcommand)} {flag}"
                    )
    for flag in loose:
        flag = _flag_name(flag)
        if flag.endswith("-"):  # a family written with a star: --container-credentials-*
            known = any(ours_flag.startswith(flag) for ours_flag in ours)
        else:
            known = flag in ours or flag in FOREIGN_FLAGS
        if not known:
            problems.append(f"{_relative(path)}: {flag}")
    return problems


@pytest.mark.parametrize("path", DOCS, ids=_relative)
def test_every_flag_the_docs_name_is_one_our_help_lists(
    path: Path, flags_of: dict[tuple[str, ...], frozenset[str]]
) -> None:
    assert not _doc_flag_problems(path, path.read_text(), flags_of)


def test_the_flag_check_catches_a_flag_no_help_lists(
    flags_of: dict[tuple[str, ...], frozenset[str]],
) -> None:
    text = (
        "Run `pod-identity-webhook mutate -f pod.yaml --no-such-flag` or give `--neither`.\n"
        "```sh\npod-identity-webhook serve --port 8443 --also-missing=1 \\\n  --nope\n```\n"
        "`pod-identity-webhook mutate --shutdown-grace-period 1s` is serve's flag, not mutate's.\n"
        "`kubectl apply --dry-run=server` is kubectl's; `--service-account-issuer` is known.\n"
    )
    assert sorted(_doc_flag_problems(ROOT / "README.md", text, flags_of)) == [
        "README.md: --neither",
        "README.md: pod-identity-webhook mutate --no-such-flag",
        "README.md: pod-identity-webhook mutate --shutdown-grace-period",
        "README.md: pod-identity-webhook serve --also-missing",
        "README.md: pod-identity-webhook serve --nope",
    ]


def test_manifest_args_are_serve_flags(
    flags_of: dict[tuple[str, ...], frozenset[str]],
) -> None:
    """Container args in manifests/ and hack/kind (the base, components' patches) are serve's."""
    files = [*(ROOT / "manifests").rglob("*.yaml"), *(ROOT / "hack" / "kind").glob("*.yaml")]
    seen = 0
    for path in files:
        for flag in re.findall(r"^\s*(?:-|value:) (--[\w-]+)", path.read_text(), re.M):
            seen += 1
            assert flag in flags_of[("serve",)], f"{_relative(path)}: {flag}"
    assert seen > 5


# -- one value each ------------------------------------------------------------------------


def test_the_fargate_registration_example_is_what_the_component_adds() -> None:
    text = (ROOT / "docs" / "fargate.md").read_text()
    section = text.split("## Registering it", 1)[1]
    example = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))[0]  # type: ignore[union-attr]
    component = yaml.safe_load(
        (ROOT / "manifests/components/fargate/kustomization.yaml").read_text()
    )
    entries = [
        op["value"]
        for patch in component["patches"]
        if patch["target"]["kind"] == "MutatingWebhookConfiguration"
        for op in yaml.safe_load(patch["patch"])
        if op["op"] == "add" and op["path"] == "/webhooks/-"
    ]
    (entry,) = entries
    assert example["name"] == entry["name"]
    assert example["clientConfig"]["service"] == entry["clientConfig"]["service"]
    for field in ("admissionReviewVersions", "sideEffects", "failurePolicy", "reinvocationPolicy"):
        assert example[field] == entry[field], field


def test_the_e2e_script_and_the_docs_install_the_cli_the_same_way() -> None:
    script = (ROOT / "hack" / "kind" / "e2e.sh").read_text()
    match = re.search(r"pod-identity-webhook is not installed \(run (make \S+?),", script)
    assert match, "e2e.sh no longer says how to install the CLI"
    install = match.group(1)
    deploy = (ROOT / "docs" / "deploy.md").read_text().split("## End-to-end in kind", 1)[1]
    block = re.search(r"```sh\n(.*?)```", deploy, re.S).group(1)  # type: ignore[union-attr]
    steps = [line.split("#")[0].strip() for line in block.splitlines()]
    assert steps[:2] == [install, "hack/kind/e2e.sh"]
    workflow = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    assert f"run: {install}\n" in workflow
