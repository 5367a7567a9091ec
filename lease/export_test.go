package lease

import "context"

// read returns the newest version and its record: readContext without a
// context.
func (s *fileStore) read() (view, error) { return s.readContext(context.Background()) }

// version is the version number of the value the handle wrote last.
func (l *Lease) version() uint64 {
	n, _ := parseDecimal(l.rev)
	return n
}
