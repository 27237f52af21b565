#!/usr/bin/env bash
# The release notes of one version: its section of CHANGELOG.md, without the heading.
#   hack/release-notes.sh 0.1.0
# Fails when CHANGELOG.md has no section `## [0.1.0]` or the section is empty.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="${1:?usage: hack/release-notes.sh VERSION}"
notes="$(awk -v heading="## [$VERSION]" '
  index($0, heading) == 1 { inside = 1; next }
  inside && /^## \[/ { exit }
  inside { print }
' CHANGELOG.md | sed -e '/./,$!d')"
if [[ -z "${notes//[[:space:]]/}" ]]; then
  echo "CHANGELOG.md has no notes for $VERSION (a section '## [$VERSION]')" >&2
  exit 1
fi
printf '%s\n' "$notes"
