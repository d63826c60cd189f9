package ssmlocal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// maxRateBody bounds a PUT /_ssm-local/rate body.
const maxRateBody = 4 << 10

// serveRate serves /_ssm-local/rate: GET answers the setting in force,
// PUT or POST {"CallsPerSecond": r, "Burst": b} sets it (Burst optional:
// 0 or absent is the default) and answers the setting in force. A bad body
// gets 400 {"message": …} naming the field.
func (s *Server) serveRate(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, s.Rate())
	case http.MethodPut, http.MethodPost:
		setting, err := decodeRate(http.MaxBytesReader(w, r.Body, maxRateBody))
		if err == nil {
			var got RateSetting
			if got, err = s.SetRate(setting.CallsPerSecond, setting.Burst); err == nil {
				writeJSON(w, http.StatusOK, got)
				return
			}
		}
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": err.Error()})
	default:
		w.Header().Set("Allow", "GET, PUT, POST")
		http.Error(w, "/_ssm-local/rate takes GET, PUT or POST", http.StatusMethodNotAllowed)
	}
}

// decodeRate reads exactly one JSON object with CallsPerSecond (required, a
// number) and Burst (optional, a whole number), nothing else.
func decodeRate(body io.Reader) (RateSetting, error) {
	raw, err := io.ReadAll(body)
	if err != nil {
		return RateSetting{}, fmt.Errorf("could not read the body: %w", err)
	}
	var in struct {
		CallsPerSecond *float64
		Burst          *int
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field != "":
			return RateSetting{}, fmt.Errorf("%s must be a %s, got %s", te.Field, want(te.Field), te.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return RateSetting{}, fmt.Errorf("%s: the body takes only CallsPerSecond and Burst",
				strings.TrimPrefix(err.Error(), "json: "))
		}
		return RateSetting{}, fmt.Errorf(`the body must be one JSON object {"CallsPerSecond": <number>, "Burst": <whole number>}: %w`, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return RateSetting{}, errors.New("unexpected data after the JSON object")
	}
	if in.CallsPerSecond == nil {
		return RateSetting{}, errors.New("CallsPerSecond is required (0: unlimited)")
	}
	out := RateSetting{CallsPerSecond: *in.CallsPerSecond}
	if in.Burst != nil {
		out.Burst = *in.Burst
	}
	return out, checkRateSetting(out.CallsPerSecond, out.Burst)
}

func want(field string) string {
	if strings.EqualFold(field, "Burst") {
		return "whole number"
	}
	return "number"
}
