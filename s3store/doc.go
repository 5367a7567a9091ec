// Package s3store keeps a lease (package lease) in one object of an S3
// bucket, or of an S3-compatible server (MinIO, Ceph RGW, Cloudflare R2),
// through conditional writes:
//
//	st, err := s3store.Open(ctx, "s3://my-bucket/jobs/report.lease")
//	l, err := lease.AcquireStore(st, 15*time.Second)
//
// # The register
//
// The object at KEY holds the lease's record, the same JSON as a file
// lease's (aws s3 cp s3://BUCKET/KEY - shows it). Its revision is its ETag
// without the quotes. Swap writes with PutObject only: with If-None-Match:
// * to create the object if it does not exist, and with If-Match: "ETAG"
// to replace the value at ETAG and no other. The server enforces both
// (S3 since 2024, MinIO, Ceph RGW, R2), so of any number of writers at one
// ETag at most one succeeds: the compare-and-swap the protocol needs
// (docs/DESIGN.md, Part 3). Nothing is ever deleted: a release writes a
// released record, so the epoch never goes back.
//
// A 412 is a lost race (lease.ErrConflict); a 409 ConditionalRequestConflict
// (a conflicting request on the key, which S3 asks to retry) is retried,
// and a conflict once the retries are spent; a 404 NoSuchKey answered to
// an If-Match means the object was deleted by hand (lease.ErrRemoved;
// servers that answer 412 instead give a conflict).
//
// # Unique bodies
//
// S3's ETag of a single-part upload (without SSE-KMS) is the MD5 of the
// body, as gofakes3's is: two writes of the same bytes share an ETag, and
// an If-Match at the first would succeed against the second. Revisions
// name writes only because no two writes of the protocol have the same
// bytes: an acquisition's record holds a fresh random InstanceID (a
// version 4 UUID); a holder's renewals and its release hold its
// InstanceID and a RenewedAt to the nanosecond, taken one after the other
// (a handle's writes are serialised, each a round trip to S3 apart), and
// a release has a TTL of 0, which no renewal has. Two of one handle's
// writes could be equal only if the wall clock stepped back onto the very
// nanosecond of an earlier write. TestUniqueBodies checks it. (Records
// planted by hand may repeat; that is outside the protocol, as any hand
// edit is.)
//
// # Epochs: the floor
//
// S3 has no counter that survives the object, as etcd's revision does, or
// a file lease's version numbers. Every Swap of a record also writes its
// epoch as the object's user metadata x-amz-meta-leaserun-epoch, and Load
// returns it as the Value's Floor: an acquisition that finds the object's
// bytes unreadable (not a record: damaged, from a newer format, or written
// by hand) takes that epoch + 1, so the epoch still goes up as long as the
// metadata stayed. A PUT replaces an object's metadata whole, so a hand
// edit (aws s3 cp FILE s3://BUCKET/KEY) drops it unless it is given again
// (aws s3 cp FILE s3://BUCKET/KEY --metadata leaserun-epoch=N), and a
// delete (aws s3 rm) drops everything: the next acquisition then starts
// again at epoch 1, as it does after PATH and PATH.d of a file lease are
// deleted. Do either only while nobody holds or waits on the lease; to keep
// epochs across a reset, copy the epoch into the metadata by hand. A
// bucket policy that denies s3:DeleteObject on the key, or S3 Versioning
// (a deleted or overwritten record stays as an older version), protects
// against accidents.
//
// # Proving the conditions
//
// A server (or a proxy before it) that ignores the conditions gives two
// holders at once, and some did. Before its first write, a Store proves
// that its server enforces them (Verify), with a probe object beside the
// lease's, KEY.probe-UUID: a second create with If-None-Match: * and a
// replace at a wrong ETag must both fail with 412, a replace at the right
// ETag must succeed. Otherwise every write fails with an error wrapping
// ErrNotEnforced, saying the store does not enforce conditional writes
// (leaserun exits 74). The probe object is deleted afterwards; without
// s3:DeleteObject on it, it stays (a lifecycle rule on the prefix
// KEY.probe- can expire such objects).
//
// # Deadlines and retries
//
// Every call ends when its context does (the protocol gives each one a
// deadline: a renewal's is the holder's own), with an error that leaves a
// write's outcome unknown. The SDK's retries are off: a retried
// conditional PUT whose first attempt landed before its reply was lost
// would get 412 (the object is at the new ETag already) and report a write
// that won as lost. The store retries by itself, up to three attempts
// within the context: after a connection error, a timeout, a 5xx or
// throttling, and after 409. An attempt that may have landed makes the
// write unsure; a 412 after it is not a conflict, and the store reads the
// object back: exactly this write's bytes mean it took effect (the bodies
// are unique); anything else is an unknown outcome, which the protocol
// resolves by its own Load before it writes again, and which its timers
// never count as a renewal. While more than two seconds are left, an
// attempt that is not the last gets half of what is left, so that a hung
// connection leaves time for a new one.
//
// Load reads at most lease.MaxRecordSize+1 bytes: it asks for that range,
// and reads no more from a server that sends the whole object anyway. S3
// answers 403, not 404, for a missing key to a caller without
// s3:ListBucket on the bucket: a lease whose object does not exist yet
// cannot be read without it, and Load says so.
//
// # Configuration
//
// Open configures the client by the AWS SDK's standard chain
// (environment, profiles, web identity, container and instance metadata),
// with the location's region=, endpoint= and path_style= parameters over
// it. Credentials are never part of the location, of String, of an error
// or of the record. Flexible checksums are off (not every S3-compatible
// server takes their aws-chunked trailers); every PUT carries a
// Content-MD5 instead.
package s3store
