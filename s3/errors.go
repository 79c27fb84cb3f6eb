package s3

import (
	"errors"
	"fmt"
	"net"
	"os"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// describe turns an SDK error into one line that says what is wrong and
// what to do. The access key id is named; the secret never is.
func (c *ReplicaClient) describe(action string, err error) error {
	endpoint := c.Endpoint
	if endpoint == "" {
		endpoint = "AWS S3"
	}
	var ae smithy.APIError
	code := ""
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	status := 0
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	switch {
	case code == "NoSuchKey" || (status == 404 && code != "NoSuchBucket"):
		return fmt.Errorf("%s: %w", action, os.ErrNotExist)
	case code == "NoSuchBucket":
		return fmt.Errorf("%s: bucket %q does not exist at %s: create it or fix the bucket name", action, c.Bucket, endpoint)
	case code == "AccessDenied" || code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" ||
		code == "InvalidToken" || code == "ExpiredToken" || status == 403:
		return fmt.Errorf("%s: access denied for access key id %q on bucket %q (%s): check the key id, the secret and the bucket's permissions", action, c.keyID, c.Bucket, orDefault(code, "403 Forbidden"))
	case code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed" || code == "IllegalLocationConstraintException" || status == 301:
		return fmt.Errorf("%s: bucket %q is in another region than %q: set region to the bucket's region (%s)", action, c.Bucket, orDefault(c.Region, "us-east-1"), orDefault(code, "301"))
	}
	var oe *net.OpError
	var dnsErr *net.DNSError
	if errors.As(err, &oe) || errors.As(err, &dnsErr) {
		return fmt.Errorf("%s: cannot reach the S3 endpoint %s (is it running and reachable?): %w", action, endpoint, err)
	}
	return fmt.Errorf("%s: %w", action, err)
}
