#!/usr/bin/env bash
# Re-make every picture in docs/screenshots/ from real runs, on X servers of their own (Xvfb).
#
# The app's windows (caption, history, transcribe, tray menu) come from `perch` running as its own process with
# the 20-word test model (../shared/models/words-tdt) on the CPU, the PulseAudio test microphone and espeak-ng
# speech: every dictation and file shown was made by that run. Settings, the first-run download (from a local
# stand-in for the model hub; its progress figures are set by the test) and Check setup are the real windows of
# this checkout on this computer; the Vocabulary page shows example entries.
#
# Needs what the tests need (README: "Install and run the tests") and the words model. Run from anywhere:
#     docs/make-screenshots.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
[ -d ../shared/models/words-tdt ] || { echo "make-screenshots: ../shared/models/words-tdt is missing" >&2; exit 1; }
export PERCH_SCREENSHOTS=1 QT_QPA_PLATFORM=xcb
exec xvfb-run --auto-servernum --server-args="-screen 0 1280x800x24" "$python" -m pytest -q -p no:cacheprovider \
    tests/screenshots_app.py \
    tests/test_tray_embed.py::test_the_tray_icon_embeds_and_its_menu_and_click_work \
    tests/test_settings_dialog.py::test_screenshot \
    tests/test_vocabulary_page.py::test_renders_the_page \
    tests/test_download_dialog.py::test_screenshot_mid_download \
    tests/test_doctor.py::test_window_screenshot_with_most_checks_passing
