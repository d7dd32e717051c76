package awsapi

import (
	"context"
	"errors"
	"time"

	"github.com/rotor-secrets/rotor/internal/rotation/custom"
	"github.com/rotor-secrets/rotor/internal/secrets"
)

// rotor.RegisterFunction, rotor.ListFunctions and rotor.DeleteFunction:
// custom rotation functions (internal/rotation/custom), which RotateSecret
// then names by Lambda ARN like the built-ins. Served when
// Config.Functions is set; the caller needs the operation's action on "*".

var functionOperations = rotorOps(
	op("RegisterFunction", registerFunctionIn, registerFunction),
	op("ListFunctions", noInput, listFunctions),
	op("DeleteFunction", functionNameIn, deleteFunction),
)

// FunctionAdmin serves the function operations (custom.Catalog).
type FunctionAdmin interface {
	Register(ctx context.Context, d custom.Definition) (custom.Definition, string, error)
	List(ctx context.Context) ([]custom.Definition, error)
	Delete(ctx context.Context, name string) error
	// FunctionARN is name's Lambda ARN.
	FunctionARN(name string) string
}

type registerFunctionRequest struct {
	FunctionName   string
	Type           string
	Command        string
	Args           []string
	Url            string
	TimeoutSeconds *int64
}

type functionNameRequest struct {
	FunctionName string
}

type functionOut struct {
	FunctionName   string
	FunctionArn    string
	Type           string
	Command        string   `json:",omitempty"`
	Args           []string `json:",omitempty"`
	Url            string   `json:",omitempty"`
	TimeoutSeconds int64
	CreatedDate    epochTime `json:",omitzero"`
}

type registerFunctionOut struct {
	functionOut
	// SigningKey (webhook functions) is shown here only: the base64 key
	// of the deliveries' X-Rotor-Signature.
	SigningKey string `json:",omitempty"`
}

type listFunctionsOut struct {
	Functions []functionOut
}

func registerFunctionIn(r *registerFunctionRequest) (custom.Definition, error) {
	d := custom.Definition{Name: r.FunctionName, Kind: r.Type, Command: r.Command, Args: r.Args, URL: r.Url}
	if r.FunctionName == "" {
		return d, &secrets.Error{Kind: secrets.KindInvalidParameter, Msg: "FunctionName is required."}
	}
	if r.TimeoutSeconds != nil {
		if *r.TimeoutSeconds < 1 || *r.TimeoutSeconds > int64(custom.MaxTimeout/time.Second) {
			return d, &secrets.Error{Kind: secrets.KindInvalidParameter, Msg: "TimeoutSeconds must be between 1 and 900."}
		}
		d.Timeout = time.Duration(*r.TimeoutSeconds) * time.Second
	}
	return d, nil
}

func functionNameIn(r *functionNameRequest) (string, error) {
	if r.FunctionName == "" {
		return "", &secrets.Error{Kind: secrets.KindInvalidParameter, Msg: "FunctionName is required."}
	}
	return r.FunctionName, nil
}

func (h *Handler) functionOf(d custom.Definition) functionOut {
	return functionOut{
		FunctionName: d.Name, FunctionArn: h.functions.FunctionARN(d.Name), Type: d.Kind,
		Command: d.Command, Args: d.Args, Url: d.URL, TimeoutSeconds: int64(d.Timeout / time.Second), CreatedDate: epochTime(d.Created),
	}
}

func registerFunction(ctx context.Context, h *Handler, d custom.Definition) (any, error) {
	if err := h.checkKeyAdmin(ctx); err != nil {
		return nil, err
	}
	got, key, err := h.functions.Register(ctx, d)
	if err != nil {
		return nil, functionError(err, d.Name)
	}
	return registerFunctionOut{functionOut: h.functionOf(got), SigningKey: key}, nil
}

func listFunctions(ctx context.Context, h *Handler, _ struct{}) (any, error) {
	if err := h.checkKeyAdmin(ctx); err != nil {
		return nil, err
	}
	ds, err := h.functions.List(ctx)
	if err != nil {
		return nil, err
	}
	out := listFunctionsOut{Functions: make([]functionOut, len(ds))}
	for i, d := range ds {
		out.Functions[i] = h.functionOf(d)
	}
	return out, nil
}

func deleteFunction(ctx context.Context, h *Handler, name string) (any, error) {
	if err := h.checkKeyAdmin(ctx); err != nil {
		return nil, err
	}
	if err := h.functions.Delete(ctx, name); err != nil {
		return nil, functionError(err, name)
	}
	return struct{}{}, nil
}

// functionError maps internal/rotation/custom's errors to the wire.
func functionError(err error, name string) error {
	var ie *custom.InvalidError
	switch {
	case errors.As(err, &ie):
		return &secrets.Error{Kind: secrets.KindInvalidParameter, Msg: ie.Msg}
	case errors.Is(err, custom.ErrNotFound):
		return &secrets.Error{Kind: secrets.KindNotFound, Msg: "Rotor can't find the function " + echoKey(name) + "."}
	case errors.Is(err, custom.ErrExists):
		return &secrets.Error{Kind: secrets.KindExists, Msg: "A function named " + echoKey(name) + " already exists."}
	}
	return err
}
