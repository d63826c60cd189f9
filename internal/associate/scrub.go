package associate

import (
	"strings"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/plan"
)

// minSecretLen is the shortest parameter value scrubbed from messages:
// shorter values would blank out ordinary words and prove nothing secret.
const minSecretLen = 3

// scrub removes the Parameters values of the entries of b from a message
// that SSM or the network stack produced. SSM marks Parameters sensitive, but
// a service error that echoes a request value must still not carry one into
// a log line, a result or a metric.
func scrub(message string, b plan.Batch) string {
	for _, it := range b {
		for _, values := range it.Entry.Parameters {
			for _, v := range values {
				if len(v) >= minSecretLen {
					message = strings.ReplaceAll(message, v, "****")
				}
			}
		}
	}
	return message
}
