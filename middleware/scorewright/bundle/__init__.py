"""`scorewright bundle`: a self-contained server (PyInstaller, one folder) that a game ships
and its engine launches; see build.py for the steps and docs/bundle.md for the layout."""


class BundleError(Exception):
    """The bundle cannot be built; the message says what to fix."""
