package pace

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Memory keeps the rate found in one item of the dedupe table, and the
// invocations pacing themselves on it now, so that:
//   - the next invocation starts near the rate found, not at
//     CALLS_PER_SECOND_START, while it is fresh (MemoryMaxAge);
//   - invocations running at once (a job's workers, concurrent API
//     requests) split the account's rate between them, and take back the
//     share of one that ended or died.
//
// The item (key pace#CreateAssociationBatch):
//
//	rate        the account's rate found: a member's rate × the members it saw
//	rate_at     when it was written (epoch ms); older than MemoryMaxAge: ignored
//	ceiling     the account's lowest rate refused above it, likewise
//	ceiling_at  when a member last saw it refused; older than CeilingMaxAge:
//	            ignored, and the next invocation probes past the rate again
//	m_<owner>   a member's lease (epoch ms), renewed every SyncEvery
//	expiration  the table's TTL: a day after the last write
//
// Each invocation writes it three ways, each one UpdateItem (no read is
// needed): Join when it starts, which returns the item as written; Sync
// FirstSync after it, then every SyncEvery while it calls SSM, which
// returns the item as it was before, so that a member hears the rate the
// others found, not its own back; Leave when it ends, which keeps its
// lease for LeaveGrace more. A run that no other run of its member is
// expected to follow soon (a worker's chunk among its job's last) syncs
// every ClosingSync and leaves with no grace, so that the runs still going
// take its share at their next Sync. A member is named for its engine (an
// execution environment), not its invocation, so that a worker's chunks,
// one after the other, are one member. A member that dies stops renewing;
// MemberLease after its last Sync the others stop counting it and scale
// their rates up by the members they lost (members before / members
// after). Nothing is conditional: members write estimates of the same
// rate, and the last one written is as good as any.
type Memory struct {
	client updater
	table  string
	now    func() time.Time
}

type updater interface {
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

const (
	// MemoryMaxAge is how long a rate found is trusted by the next
	// invocation: SSM's limits can change, and a rate a day old is a guess.
	MemoryMaxAge = 15 * time.Minute
	// SyncEvery is how often a member renews its lease and reads the others.
	SyncEvery = 5 * time.Second
	// FirstSync is how soon after Join a member first syncs: members that
	// join within moments of each other (a job's workers starting) each
	// saw only those before it, and learn how many they are only then.
	FirstSync = time.Second
	// MemberLease is how long a member counts without a Sync.
	MemberLease = 3 * SyncEvery
	// LeaveGrace is how long a member counts after it leaves: a member
	// that comes back within it (a worker's next chunk, under the same
	// name) was never gone for the others, whose shares would otherwise
	// grow for the moment it was away and stay too large once it is back.
	LeaveGrace = 2 * time.Second
	// ClosingSync is how often a member syncs when no run of it is
	// expected after this one (a job's last chunks): it hears within a
	// second that the others left, and takes their share.
	ClosingSync = time.Second
	// CeilingMaxAge is how long a rate refused keeps the next invocations
	// from probing past the rate found: invocations as short as a job's
	// chunks never reach a probe themselves, and SSM's rate may rise.
	CeilingMaxAge = time.Minute

	memoryKey    = "pace#CreateAssociationBatch"
	keyAttr      = "id" // the dedupe table's key (dedupe.KeyAttribute)
	ttlAttr      = "expiration"
	attrRate     = "rate"
	attrRateAt   = "rate_at"
	attrCeiling  = "ceiling"
	attrCeilAt   = "ceiling_at"
	memberPrefix = "m_"
	itemTTL      = 24 * time.Hour
)

// NewMemory keeps the rate in table (the dedupe table).
func NewMemory(client updater, table string) *Memory {
	return &Memory{client: client, table: table, now: time.Now}
}

// Share is what the item says when a member writes it.
type Share struct {
	// Account is the account's rate found, 0 when none is fresh; Ceiling
	// the account's lowest rate refused above it, 0 when none is fresh.
	Account, Ceiling float64
	// Members is how many members (execution environments running an
	// invocation, or within LeaveGrace of one) pace themselves on it now,
	// the writer included.
	Members int
	expired []string // members whose lease ran out: removed by the next write
}

// PerMember is a member's share of the account's rate; 0 when none is known.
func (s Share) PerMember() float64 { return s.split(s.Account) }

// CeilingPerMember is a member's share of the account's ceiling; 0 when
// none is known.
func (s Share) CeilingPerMember() float64 { return s.split(s.Ceiling) }

func (s Share) split(v float64) float64 {
	if v <= 0 || s.Members <= 0 {
		return 0
	}
	return v / float64(s.Members)
}

// Estimate is what a member found: the rate it held, and the lowest rate
// SSM refused it above that (0: none refused in this invocation).
type Estimate struct {
	Rate, Ceiling float64
}

// Join makes owner a member.
func (m *Memory) Join(ctx context.Context, owner string) (Share, error) {
	now := m.now()
	upd := lease(owner, now.Add(MemberLease)).
		Set(expression.Name(ttlAttr), expression.Value(now.Add(itemTTL).Unix()))
	item, err := m.update(ctx, "join", upd, ddbtypes.ReturnValueAllNew)
	if err != nil {
		return Share{}, err
	}
	return shareOf(item, now, ""), nil
}

// Sync renews owner's lease and records what it found, with last the
// Share of its previous write. The Share it returns holds the account's
// rate and ceiling as they were before this write, as the last member to
// write found them (owner itself when no other wrote since), and the
// members counting now, owner among them.
func (m *Memory) Sync(ctx context.Context, owner string, found Estimate, last Share) (Share, error) {
	now := m.now()
	upd := m.record(lease(owner, now.Add(MemberLease)), owner, found, last, now)
	item, err := m.update(ctx, "sync", upd, ddbtypes.ReturnValueAllOld)
	if err != nil {
		return Share{}, err
	}
	return shareOf(item, now, owner), nil
}

// Leave ends owner's membership grace from now (LeaveGrace, or 0 when no
// run of it is expected soon), recording what it found.
func (m *Memory) Leave(ctx context.Context, owner string, found Estimate, last Share, grace time.Duration) error {
	now := m.now()
	upd := m.record(lease(owner, now.Add(grace)), owner, found, last, now)
	_, err := m.update(ctx, "leave", upd, ddbtypes.ReturnValueNone)
	return err
}

// lease sets owner's lease to end at until. A member's name is one
// attribute, whatever it holds: a dot is not a path.
func lease(owner string, until time.Time) expression.UpdateBuilder {
	return expression.Set(expression.NameNoDotSplit(memberPrefix+owner), expression.Value(until.UnixMilli()))
}

// record sets the account's rate (and ceiling, when one was refused) as
// the member's × the members last seen, and removes the other members
// last seen dead.
func (m *Memory) record(upd expression.UpdateBuilder, owner string, found Estimate, last Share, now time.Time) expression.UpdateBuilder {
	members := float64(max(last.Members, 1))
	upd = upd.Set(expression.Name(attrRate), expression.Value(found.Rate*members)).
		Set(expression.Name(attrRateAt), expression.Value(now.UnixMilli())).
		Set(expression.Name(ttlAttr), expression.Value(now.Add(itemTTL).Unix()))
	if found.Ceiling > found.Rate {
		upd = upd.Set(expression.Name(attrCeiling), expression.Value(found.Ceiling*members)).
			Set(expression.Name(attrCeilAt), expression.Value(now.UnixMilli()))
	}
	for _, name := range last.expired {
		if name != memberPrefix+owner { // written above: one path, once
			upd = upd.Remove(expression.NameNoDotSplit(name))
		}
	}
	return upd
}

// update applies upd and returns the item as ret asks.
func (m *Memory) update(ctx context.Context, op string, upd expression.UpdateBuilder, ret ddbtypes.ReturnValue) (map[string]ddbtypes.AttributeValue, error) {
	expr, err := expression.NewBuilder().WithUpdate(upd).Build()
	if err != nil {
		return nil, fmt.Errorf("rate memory %s: %w", op, err)
	}
	out, err := m.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(m.table),
		Key:                       map[string]ddbtypes.AttributeValue{keyAttr: &ddbtypes.AttributeValueMemberS{Value: memoryKey}},
		UpdateExpression:          expr.Update(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
		ReturnValues:              ret,
	})
	if err != nil {
		return nil, fmt.Errorf("rate memory %s: %w", op, err)
	}
	return out.Attributes, nil
}

// shareOf reads item at now; owner, when named, is a member
// whatever its lease in item says (the write renewed it).
func shareOf(item map[string]ddbtypes.AttributeValue, now time.Time, owner string) Share {
	var s Share
	if at := number(item[attrRateAt]); at > 0 && now.Sub(time.UnixMilli(int64(at))) <= MemoryMaxAge {
		s.Account = number(item[attrRate])
		if at := number(item[attrCeilAt]); at > 0 && now.Sub(time.UnixMilli(int64(at))) <= CeilingMaxAge {
			if c := number(item[attrCeiling]); c > s.Account {
				s.Ceiling = c
			}
		}
	}
	if owner != "" {
		s.Members++
	}
	for name, v := range item {
		if !strings.HasPrefix(name, memberPrefix) || owner != "" && name == memberPrefix+owner {
			continue
		}
		if time.UnixMilli(int64(number(v))).After(now) {
			s.Members++
		} else {
			s.expired = append(s.expired, name)
		}
	}
	return s
}

func number(v ddbtypes.AttributeValue) float64 {
	n, ok := v.(*ddbtypes.AttributeValueMemberN)
	if !ok {
		return 0
	}
	f, _ := strconv.ParseFloat(n.Value, 64)
	return f
}
