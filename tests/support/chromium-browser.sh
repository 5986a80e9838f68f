#!/bin/sh
# $BROWSER for the end-to-end login test: real headless Chromium, started with the flags a
# closed network needs (no background networking, component updates or sync, which would
# otherwise try hosts that cannot be reached) and --password-store=basic, which keeps it out
# of the test keyring;
# started in the background in its own session so the test can kill the whole group
# (each start appends its group to the pid file: a setup signs in twice).
# --dump-dom makes it exit once the page (mailer's "you can close this tab") has loaded.
url="$1"
profile=$(mktemp -d "${TMPDIR:-/tmp}/mailer-chromium.XXXXXX")
setsid sh -c 'echo $$ >> "$MAILER_TEST_CHROMIUM_PIDFILE"
  exec timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-dev-shm-usage --password-store=basic --user-data-dir="$1" --dump-dom "$2" \
    > "$MAILER_TEST_CHROMIUM_DOM" 2>"$MAILER_TEST_CHROMIUM_DOM.log"' sh "$profile" "$url" &
exit 0
