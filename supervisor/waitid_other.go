//go:build unix && !linux

package supervisor

// waitNoReap can't wait without reaping here: the caller reaps first, and
// kills what the child left in its group just after, with a tiny window in
// which the group's id could in theory be reused. Nor does it see the
// child's stops.
func waitNoReap(int, *jobState) bool { return false }
