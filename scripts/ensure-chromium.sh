#!/bin/sh
# Make sure Debian's chromium and chromium-driver are installed: the console's browser test
# (tests/test_console_browser.py) drives them, and the emoji font the todo list uses shows in
# its screenshot. Nothing is downloaded from outside Debian.
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && [ -d /usr/share/fonts/truetype/noto ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium chromium-driver fonts-noto-color-emoji >/dev/null
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then exit 0; fi
echo "chromium or chromedriver is still missing after apt-get install" >&2
exit 1
