package s3store

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/leaserun/leaserun/lease"
)

// ErrLocation is wrapped by the errors of Open for a location that is not
// an S3 lease: an unknown scheme, a missing bucket or key, a malformed URL,
// an unknown or bad query parameter, credentials in the URL, no region.
// It wraps lease.ErrInvalid, which leaserun reports as a usage error (exit
// 64) naming --lease.
var ErrLocation error = locationSentinel{}

type locationSentinel struct{}

func (locationSentinel) Error() string { return "s3store: bad lease location" }
func (locationSentinel) Unwrap() error { return lease.ErrInvalid }

// Location is a parsed s3:// location: s3://BUCKET/KEY?region=&endpoint=&path_style=.
type Location struct {
	Bucket string
	Key    string
	// Region, if not empty, overrides AWS_REGION and the profile's region.
	Region string
	// Endpoint, if not empty, overrides AWS_ENDPOINT_URL_S3 and
	// AWS_ENDPOINT_URL: the base URL of an S3-compatible server.
	Endpoint string
	// PathStyle, if not nil, says whether to address the bucket in the
	// path (http://host/BUCKET/KEY) rather than in the host name
	// (http://BUCKET.host/KEY). Default: true when an endpoint is set (by
	// the URL or the environment), else false.
	PathStyle *bool
}

// ParseLocation parses location, which must be an s3:// URL. Its errors
// wrap ErrLocation and never show a password that the URL held.
func ParseLocation(location string) (*Location, error) {
	u, err := url.Parse(location)
	if err != nil {
		// url.Error quotes the URL as given: say what is wrong without it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, locationError(redact(location), "malformed URL: %v", err)
	}
	return parseURL(u)
}

// parseURL is ParseLocation for a parsed URL.
func parseURL(u *url.URL) (*Location, error) {
	shown := u.Redacted()
	if q, err := url.ParseQuery(u.RawQuery); err == nil && len(q["endpoint"]) > 0 {
		// Nor the password of an endpoint's URL.
		for i, v := range q["endpoint"] {
			if e, err := url.Parse(v); err == nil && e.User != nil {
				q["endpoint"][i] = e.Redacted()
				r := *u
				r.User, r.RawQuery = nil, q.Encode()
				shown = r.String()
			}
		}
	}
	switch {
	case u.Scheme != "s3":
		if u.Scheme == "" {
			return nil, locationError(shown, "not a URL: want s3://BUCKET/KEY")
		}
		return nil, locationError(shown, "unknown scheme %q: want s3://BUCKET/KEY", u.Scheme)
	case u.Opaque != "":
		return nil, locationError(shown, "malformed URL: want s3://BUCKET/KEY")
	case u.User != nil:
		return nil, locationError(shown, "credentials don't belong in the location: use the AWS environment, a profile or a role")
	case u.Host == "":
		return nil, locationError(shown, "no bucket: want s3://BUCKET/KEY")
	case u.Port() != "" || strings.HasSuffix(u.Host, ":"):
		return nil, locationError(shown, "a bucket has no port: for a server of your own, use ?endpoint=http://HOST:PORT")
	case u.Fragment != "" || u.RawFragment != "" || strings.HasSuffix(u.String(), "#"):
		return nil, locationError(shown, "a fragment (#...) is not part of an S3 location")
	}
	key := strings.TrimPrefix(u.Path, "/")
	if key == "" {
		return nil, locationError(shown, "no key: want s3://BUCKET/KEY")
	}
	loc := &Location{Bucket: u.Host, Key: key}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, locationError(shown, "malformed query: %v", err)
	}
	for name, vals := range q {
		if len(vals) != 1 {
			return nil, locationError(shown, "parameter %s given %d times", name, len(vals))
		}
		v := vals[0]
		switch name {
		case "region":
			if v == "" || strings.ContainsAny(v, "/ ") {
				return nil, locationError(shown, "region=%q: not a region", v)
			}
			loc.Region = v
		case "endpoint":
			e, err := url.Parse(v)
			switch {
			case err != nil || e.Host == "" || e.Opaque != "":
				return nil, locationError(shown, "endpoint=: not a URL (want http://HOST:PORT or https://HOST)")
			case e.Scheme != "http" && e.Scheme != "https":
				return nil, locationError(shown, "endpoint=: scheme %q, want http or https", e.Scheme)
			case e.User != nil:
				return nil, locationError(shown, "endpoint=: credentials don't belong in the location: use the AWS environment, a profile or a role")
			case e.RawQuery != "" || e.Fragment != "":
				return nil, locationError(shown, "endpoint=: a base URL has no query or fragment")
			}
			loc.Endpoint = v
		case "path_style":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, locationError(shown, "path_style=%q: want true or false", v)
			}
			loc.PathStyle = &b
		default:
			return nil, locationError(shown, "unknown parameter %q (known: region, endpoint, path_style)", name)
		}
	}
	return loc, nil
}

// String is the location as a URL, with its parameters in a fixed order.
func (l *Location) String() string {
	u := url.URL{Scheme: "s3", Host: l.Bucket, Path: "/" + l.Key}
	var q []string
	if l.Region != "" {
		q = append(q, "region="+queryEscaper.Replace(l.Region))
	}
	if l.Endpoint != "" {
		q = append(q, "endpoint="+queryEscaper.Replace(l.Endpoint))
	}
	if l.PathStyle != nil {
		q = append(q, "path_style="+strconv.FormatBool(*l.PathStyle))
	}
	u.RawQuery = strings.Join(q, "&")
	return u.String()
}

// queryEscaper escapes what would end or change a query parameter's
// value, and no more: endpoint=http://127.0.0.1:9000 stays readable.
var queryEscaper = strings.NewReplacer("%", "%25", "&", "%26", "#", "%23", "+", "%2B", " ", "%20")

func locationError(shown, format string, args ...any) error {
	return fmt.Errorf("%w %s: %s", ErrLocation, shown, fmt.Sprintf(format, args...))
}

// redact hides the password of a string that url.Parse could not parse,
// in case it holds one: everything between "//" and the last "@" before
// the path goes.
func redact(s string) string {
	scheme, rest, ok := strings.Cut(s, "//")
	if !ok {
		return s
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
		return scheme + "//xxxxx@" + rest[at+1:]
	}
	return s
}
