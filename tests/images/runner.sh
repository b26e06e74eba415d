#!/bin/sh
# A runner implementing the Humanitec container runner contract, for the test images
# (scripts/build-test-images.sh: localhost/test-images/runner:1 and iac-runner:1).
#
# Reads ACTION (create | destroy), writes OUTPUTS_FILE and SECRET_OUTPUTS_FILE (flat JSON
# objects) and, on failure, ERROR_FILE. If SCRIPTS_DIRECTORY holds run.sh it is run with the same
# environment (this is how the IaC image runs terraform); otherwise the outputs come from
# RUNNER_OUTPUTS / RUNNER_SECRET_OUTPUTS (JSON, default {"action": ACTION}).
# Failing on request: RUNNER_FAIL=<message> writes the message to ERROR_FILE and exits 1;
# RUNNER_EXIT=<code> sets the exit code (default 1). RUNNER_SLEEP=<seconds> waits first.
set -eu

: "${ACTION:?ACTION must be set (create or destroy)}"
: "${OUTPUTS_FILE:?OUTPUTS_FILE must be set}"
: "${SECRET_OUTPUTS_FILE:?SECRET_OUTPUTS_FILE must be set}"
: "${ERROR_FILE:?ERROR_FILE must be set}"

fail() {
  mkdir -p "$(dirname "$ERROR_FILE")"
  printf '%s\n' "$1" > "$ERROR_FILE"
  echo "runner: $1" >&2
  exit "${RUNNER_EXIT:-1}"
}

case "$ACTION" in
  create|destroy) ;;
  *) fail "unknown ACTION \"$ACTION\"" ;;
esac

echo "runner: ACTION=$ACTION"
[ -n "${RUNNER_SLEEP:-}" ] && sleep "$RUNNER_SLEEP"
[ -n "${RUNNER_FAIL:-}" ] && fail "$RUNNER_FAIL"

mkdir -p "$(dirname "$OUTPUTS_FILE")" "$(dirname "$SECRET_OUTPUTS_FILE")"
if [ -n "${SCRIPTS_DIRECTORY:-}" ] && [ -f "$SCRIPTS_DIRECTORY/run.sh" ]; then
  echo "runner: running $SCRIPTS_DIRECTORY/run.sh"
  cd "$SCRIPTS_DIRECTORY"
  if ! sh ./run.sh; then
    [ -s "$ERROR_FILE" ] || fail "run.sh failed"
    exit 1
  fi
else
  # Why the default in a variable: inside ${VAR:-...} the first "}" ends the expansion, so a
  # literal JSON default would leave a stray "}" after a set RUNNER_OUTPUTS.
  default_outputs="{\"action\": \"$ACTION\"}"
  printf '%s\n' "${RUNNER_OUTPUTS:-$default_outputs}" > "$OUTPUTS_FILE"
  printf '%s\n' "${RUNNER_SECRET_OUTPUTS:-{\}}" > "$SECRET_OUTPUTS_FILE"
fi
[ -f "$OUTPUTS_FILE" ] || echo '{}' > "$OUTPUTS_FILE"
[ -f "$SECRET_OUTPUTS_FILE" ] || echo '{}' > "$SECRET_OUTPUTS_FILE"
echo "runner: done"
