package ssmlocal

import (
	"strings"

	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// Constraints copied from the SSM service model (botocore
// data/ssm/2014-11-06/service-2.json). Pattern texts are verbatim because the
// service quotes them in its ValidationException messages.
var (
	patDocumentARN     = newPattern(`^[a-zA-Z0-9_\-.:/]{3,128}$`)
	patInstanceID      = newPattern(`(^i-(\w{8}|\w{17})$)|(^mi-\w{17}$)`)
	patDocumentVersion = newPattern(`([$]LATEST|[$]DEFAULT|^[1-9][0-9]*$)`)
	patTargetKey       = newPattern(`^[\p{L}\p{Z}\p{N}_.:/=\-@]*$|resource-groups:ResourceTypeFilters|resource-groups:Name`)
	patAssociationName = newPattern(`^[a-zA-Z0-9_\-.]{3,128}$`)
	patMaxErrors       = newPattern(`^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$`)
	patMaxConcurrency  = newPattern(`^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$`)
	patExecutionRole   = newPattern(`[\w+=,.@/-]+`)
	patExcludeAccount  = newPattern(`^(ou-[a-z0-9]{4,32}-[a-z0-9]{8,32})|(\d{12})$`)
	patAssumeRoleARN   = newPattern(`arn:aws(-[^:]+)?:iam::[0-9]{12}:role/.+`)
	patAssociationID   = newPattern(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)
	patAssocVersion    = newPattern(`([$]LATEST)|([1-9][0-9]*)`)
	patTagKey          = newPattern(`^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$`)
	patTagValue        = newPattern(`^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$`)
	// AlarmName is `^(?!\s*$).+`: RE2 has no lookahead, so it is spelled out.
	patAlarmName = &pattern{text: `^(?!\s*$).+`, match: func(s string) bool {
		return strings.TrimSpace(s) != "" && !strings.ContainsAny(s, "\n\r")
	}}
)

// The model's enums, from the SDK (the same model), in its order: the
// service lists them in that order in its messages.
var (
	enumComplianceSeverity = enumStrings(ssmtypes.AssociationComplianceSeverity("").Values())
	enumSyncCompliance     = enumStrings(ssmtypes.AssociationSyncCompliance("").Values())
	enumFilterKey          = enumStrings(ssmtypes.AssociationFilterKey("").Values())
)

// enumStrings is an SDK enum's Values as strings.
func enumStrings[T ~string](values []T) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = string(v)
	}
	return out
}

// Rules for each string shape; max -1 means the model sets no maximum.
var (
	ruleDocumentARN     = strRule{min: 0, max: -1, pattern: patDocumentARN}
	ruleInstanceID      = strRule{max: -1, pattern: patInstanceID}
	ruleAutoTargetParam = strRule{min: 1, max: 50}
	ruleDocumentVersion = strRule{max: -1, pattern: patDocumentVersion}
	ruleTargetKey       = strRule{min: 1, max: 163, pattern: patTargetKey}
	ruleSchedule        = strRule{min: 1, max: 256}
	ruleS3Region        = strRule{min: 3, max: 20}
	ruleS3Bucket        = strRule{min: 3, max: 63}
	ruleS3KeyPrefix     = strRule{max: 500}
	ruleAssociationName = strRule{max: -1, pattern: patAssociationName}
	ruleMaxErrors       = strRule{min: 1, max: 7, pattern: patMaxErrors}
	ruleMaxConcurrency  = strRule{min: 1, max: 7, pattern: patMaxConcurrency}
	ruleCompliance      = strRule{max: -1, enum: enumComplianceSeverity}
	ruleSyncCompliance  = strRule{max: -1, enum: enumSyncCompliance}
	ruleExecutionRole   = strRule{min: 1, max: 64, pattern: patExecutionRole}
	ruleExcludeAccount  = strRule{min: 6, max: 68, pattern: patExcludeAccount}
	ruleAlarmName       = strRule{required: true, min: 1, max: 255, pattern: patAlarmName}
	ruleTargetMapKey    = strRule{min: 1, max: 50}
	ruleTargetMapValue  = strRule{min: 1, max: 50}
	ruleAssumeRole      = strRule{min: 1, max: 512, pattern: patAssumeRoleARN}
	ruleAssociationID   = strRule{max: -1, pattern: patAssociationID}
	ruleAssocVersion    = strRule{max: -1, pattern: patAssocVersion}
	ruleTagKey          = strRule{required: true, min: 1, max: 128, pattern: patTagKey}
	ruleTagValue        = strRule{required: true, min: 0, max: 256, pattern: patTagValue}
	ruleFilterKey       = strRule{required: true, max: -1, enum: enumFilterKey}
	ruleFilterValue     = strRule{required: true, min: 1, max: -1}
)
