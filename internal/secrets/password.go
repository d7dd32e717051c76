package secrets

import (
	"context"
	"errors"

	"github.com/rotor-secrets/rotor/internal/password"
)

// GetRandomPassword generates a password with AWS's options and defaults.
func (s *Service) GetRandomPassword(ctx context.Context, in PasswordInput) (string, error) {
	if err := s.authorize(ctx, &Access{}); err != nil {
		return "", err
	}
	o := password.Defaults()
	if in.PasswordLength != nil {
		if *in.PasswordLength < 1 || *in.PasswordLength > 4096 {
			return "", validation("passwordLength", "Member must have value between 1 and 4096")
		}
		o.Length = int(*in.PasswordLength)
	}
	if err := checkLen("excludeCharacters", in.ExcludeCharacters, 0, 4096); err != nil {
		return "", err
	}
	o.ExcludeCharacters = in.ExcludeCharacters
	o.ExcludeNumbers = in.ExcludeNumbers
	o.ExcludePunctuation = in.ExcludePunctuation
	o.ExcludeUppercase = in.ExcludeUppercase
	o.ExcludeLowercase = in.ExcludeLowercase
	o.IncludeSpace = in.IncludeSpace
	if in.RequireEachIncludedType != nil {
		o.RequireEachIncludedType = *in.RequireEachIncludedType
	}
	pw, err := password.Generate(s.cfg.Rand, o)
	switch {
	case errors.Is(err, password.ErrNoCharacters), errors.Is(err, password.ErrTooShort),
		errors.Is(err, password.ErrLength), errors.Is(err, password.ErrExcludeCharactersLength):
		return "", errorf(KindInvalidParameter, "%s", err.Error())
	case err != nil:
		return "", internal("generate password", err)
	}
	return pw, nil
}
