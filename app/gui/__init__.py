"""The desktop app: tray, caption window, dialogs; the only place Qt lives."""
