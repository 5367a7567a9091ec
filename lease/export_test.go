package lease

// Exported for the benchmarks in package lease_test.
var (
	CreateExcl  = createExcl
	ReplaceFile = replaceFile
)
