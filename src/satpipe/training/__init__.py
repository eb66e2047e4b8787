"""Lightning modules, callbacks, schedules and fit functions."""
