package jobs

import (
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/plan"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// merge combines the outcomes of a chunk's earlier, unfinished run with
// those of its rerun. The rerun finds what the earlier run associated or
// updated in the claim table and calls it "already associated"; the job must
// still report it Successful or Updated, as the earlier run did.
func merge(earlier, rerun report.Result) report.Result {
	if len(earlier.Successful)+len(earlier.Updated) == 0 {
		return rerun
	}
	done := map[string]report.Association{}
	for _, a := range earlier.Successful {
		for _, k := range keysOf(request.Entry{Name: a.Name, InstanceId: nonEmpty(a.InstanceId), Targets: a.Targets, TargetMaps: a.TargetMaps, AssociationName: nonEmpty(a.AssociationName)}) {
			done[k] = a
		}
	}
	updated := map[string]report.Updated{}
	for _, u := range earlier.Updated {
		for _, k := range keysOf(u.Entry) {
			updated[k] = u
		}
	}
	out := rerun
	out.Successful = append([]report.Association(nil), rerun.Successful...)
	out.Updated = append([]report.Updated(nil), rerun.Updated...)
	out.Deduplicated = out.Deduplicated[:0:0]
	kept := map[string]bool{}
	for _, d := range rerun.Deduplicated {
		if d.Reason != report.ReasonAlreadyAssociated {
			out.Deduplicated = append(out.Deduplicated, d)
			continue
		}
		var (
			a        report.Association
			u        report.Updated
			isA, isU bool
		)
		for _, k := range keysOf(d.Entry) {
			if prev, ok := done[k]; ok {
				a, isA = prev, true
			}
			if prev, ok := updated[k]; ok {
				u, isU = prev, true
			}
		}
		switch {
		case isA && !kept[a.AssociationId]:
			kept[a.AssociationId] = true
			out.Successful = append(out.Successful, a)
		case isA:
		case isU:
			out.Updated = append(out.Updated, u)
		default:
			out.Deduplicated = append(out.Deduplicated, d)
		}
	}
	out.Tally()
	return out
}

func keysOf(e request.Entry) []string {
	return plan.NewItem(&request.Item{Entry: e}).Keys
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
