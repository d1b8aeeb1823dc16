# Nothing to do: the marker is the measurement.
true
