package lease

// Exported for the benchmarks in package lease_test.
var (
	CreateExcl  = createExcl
	ReplaceFile = replaceFile
)

// version is the version number of the value the handle wrote last.
func (l *Lease) version() uint64 {
	n, _ := parseDecimal(l.rev)
	return n
}
