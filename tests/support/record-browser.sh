#!/bin/sh
# A $BROWSER for tests: records the URL it was asked to open and opens nothing, so a
# test can assert that no browser was started (or which URL would have been).
printf '%s\n' "$1" >> "${MAILER_TEST_BROWSER_LOG:?}"
