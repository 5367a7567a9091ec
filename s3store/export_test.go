package s3store

import "github.com/aws/aws-sdk-go-v2/service/s3"

// ClientSettings returns what the store's client was configured with.
func ClientSettings(s *Store) (region, endpoint string, pathStyle bool) {
	o := s.client.Options()
	if o.BaseEndpoint != nil {
		endpoint = *o.BaseEndpoint
	}
	return o.Region, endpoint, o.UsePathStyle
}

// Client is the store's client.
func Client(s *Store) *s3.Client { return s.client }
