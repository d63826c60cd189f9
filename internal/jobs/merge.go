package jobs

import (
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// merge combines the outcomes of a chunk's earlier, unfinished run with
// those of its rerun. The rerun finds what the earlier run associated in the
// claim table and calls it "already associated"; the job must still report
// it Successful, as the earlier run did.
func merge(earlier, rerun report.Result) report.Result {
	if len(earlier.Successful) == 0 {
		return rerun
	}
	done := map[string]report.Association{}
	for _, a := range earlier.Successful {
		for _, k := range keysOf(request.Entry{Name: a.Name, InstanceId: nonEmpty(a.InstanceId), Targets: a.Targets, TargetMaps: a.TargetMaps}) {
			done[k] = a
		}
	}
	out := rerun
	out.Successful = append([]report.Association(nil), rerun.Successful...)
	out.Deduplicated = out.Deduplicated[:0:0]
	kept := map[string]bool{}
	for _, d := range rerun.Deduplicated {
		a, found := report.Association{}, false
		if d.Reason == report.ReasonAlreadyAssociated {
			for _, k := range keysOf(d.Entry) {
				if prev, ok := done[k]; ok {
					a, found = prev, true
				}
			}
		}
		if !found {
			out.Deduplicated = append(out.Deduplicated, d)
			continue
		}
		if !kept[a.AssociationId] {
			kept[a.AssociationId] = true
			out.Successful = append(out.Successful, a)
		}
	}
	out.Tally()
	return out
}

func keysOf(e request.Entry) []string {
	return dedupe.NewItem(&request.Item{Entry: e}).Keys
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
