package ssmlocal

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Error codes the emulator returns for a whole call. The names are the
// service's; the model's exceptions are listed in its "errors" per operation.
const (
	codeValidation          = "ValidationException"
	codeSerialization       = "SerializationException"
	codeUnknownOperation    = "UnknownOperationException"
	codeThrottling          = "ThrottlingException"
	codeInternal            = "InternalServerError"
	codeDuplicateInstanceID = "DuplicateInstanceId"
	codeAlreadyExists       = "AssociationAlreadyExists"
	codeDoesNotExist        = "AssociationDoesNotExist"
	codeLimitExceeded       = "AssociationLimitExceeded"
	codeInvalidDocument     = "InvalidDocument"
	codeInvalidDocVersion   = "InvalidDocumentVersion"
	codeInvalidInstanceID   = "InvalidInstanceId"
	codeInvalidParameters   = "InvalidParameters"
	codeUnsupportedPlatform = "UnsupportedPlatformType"
	codeInvalidTarget       = "InvalidTarget"
	codeInvalidTargetMaps   = "InvalidTargetMaps"
	codeInvalidSchedule     = "InvalidSchedule"
	codeInvalidNextToken    = "InvalidNextToken"
	codeInvalidAssocVersion = "InvalidAssociationVersion"
	codeInvalidUpdate       = "InvalidUpdate"
	codeVersionLimit        = "AssociationVersionLimitExceeded"
)

// modeledWithMessage lists the exceptions whose model shape has a "Message"
// member. The SDK fills a modeled exception's message only from that member,
// while unmodeled errors (ValidationException, ThrottlingException…) are read
// from "message"; the real service sends the lower-case form, so both go out
// for these codes.
var modeledWithMessage = map[string]bool{
	codeInternal: true, codeInvalidDocument: true, codeInvalidDocVersion: true,
	codeInvalidInstanceID: true, codeInvalidParameters: true, codeUnsupportedPlatform: true,
	codeInvalidTarget: true, codeInvalidTargetMaps: true, codeInvalidSchedule: true,
	codeDoesNotExist: true, codeInvalidNextToken: true, codeInvalidAssocVersion: true,
	codeInvalidUpdate: true, codeVersionLimit: true,
}

// apiError is a whole-call failure: an HTTP status, an error code and a
// message, written as the service writes it.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (%d): %s", e.Code, e.Status, e.Message) }

func clientError(code, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: code, Message: fmt.Sprintf(format, args...)}
}

// writeError writes e with the X-Amzn-ErrorType header (the SDK reads the
// code from there first) and a body carrying __type and message.
func writeError(w http.ResponseWriter, e *apiError) {
	body := map[string]string{"__type": e.Code, "message": e.Message}
	if modeledWithMessage[e.Code] {
		body["Message"] = e.Message
	}
	w.Header().Set("X-Amzn-ErrorType", e.Code)
	writeJSON(w, e.Status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own response types reach here; failing to marshal them is
		// a bug, reported the way the service reports its own failures.
		status = http.StatusInternalServerError
		w.Header().Set("X-Amzn-ErrorType", codeInternal)
		b = []byte(`{"__type":"InternalServerError","message":"response encoding failed"}`)
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
