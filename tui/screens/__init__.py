"""The app's screens: runs, one run, the review queue, and the small dialogs."""
