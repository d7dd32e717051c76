package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/rotor-secrets/rotor/client"
)

// exampleAPI stands in for Secrets Manager so that the examples run without
// a network. A program passes a *secretsmanager.Client instead:
//
//	cfg, err := config.LoadDefaultConfig(ctx)
//	...
//	cache := client.New(secretsmanager.NewFromConfig(cfg), client.Config{})
type exampleAPI struct{}

const (
	exampleARN   = "arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/app/db-AbCdEf"
	exampleValue = `{"engine":"postgres","host":"db.internal","port":5432,"username":"app","password":"s3cr3t","dbname":"app"}`
)

func (exampleAPI) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	if id := aws.ToString(in.SecretId); id != "prod/app/db" && id != exampleARN {
		return nil, &types.ResourceNotFoundException{Message: aws.String("Secrets Manager can't find the specified secret.")}
	}
	return &secretsmanager.GetSecretValueOutput{
		ARN:           aws.String(exampleARN),
		Name:          aws.String("prod/app/db"),
		VersionId:     aws.String("a1b2c3d4-0000-4000-8000-000000000001"),
		VersionStages: []string{"AWSCURRENT"},
		SecretString:  aws.String(exampleValue),
	}, nil
}

func (exampleAPI) DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	return &secretsmanager.DescribeSecretOutput{
		ARN:                aws.String(exampleARN),
		Name:               aws.String("prod/app/db"),
		VersionIdsToStages: map[string][]string{"a1b2c3d4-0000-4000-8000-000000000001": {"AWSCURRENT"}},
	}, nil
}

func ExampleNew() {
	cache := client.New(exampleAPI{}, client.Config{
		TTL:      time.Minute,      // check for a new version every minute or so
		MaxStale: 10 * time.Minute, // ride out a short outage of the service
	})
	defer cache.Close()

	s, err := cache.Get(context.Background(), "prod/app/db")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.Name, s.VersionStages)
	fmt.Println(s) // never prints the value
	// Output:
	// prod/app/db [AWSCURRENT]
	// secret prod/app/db version a1b2c3d4-0000-4000-8000-000000000001 [REDACTED]
}

func ExampleCache_Get() {
	cache := client.New(exampleAPI{}, client.Config{})
	defer cache.Close()
	ctx := context.Background()

	// The first read goes to the service; the next ones, until the TTL runs
	// out, are answered from memory.
	s, err := cache.Get(ctx, "prod/app/db")
	if err != nil {
		log.Fatal(err)
	}
	var db struct {
		Host     string `json:"host"`
		Port     int    `json:"port"`
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := json.Unmarshal([]byte(s.SecretString), &db); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("connect to %s:%d as %s\n", db.Host, db.Port, db.Username)

	// A secret can be read by its ARN as well as by its name.
	same, _ := cache.Get(ctx, exampleARN)
	fmt.Println(same.VersionID == s.VersionID)

	_, err = cache.Get(ctx, "prod/app/missing")
	var nf *types.ResourceNotFoundException
	fmt.Println(errors.As(err, &nf))
	// Output:
	// connect to db.internal:5432 as app
	// true
	// true
}

func ExampleCache_RefreshNow() {
	cache := client.New(exampleAPI{}, client.Config{})
	defer cache.Close()
	ctx := context.Background()

	// A database refused the cached password: the secret has probably been
	// rotated. RefreshNow skips the TTL and reads AWSCURRENT again; many
	// connections failing at once share one request.
	s, err := cache.RefreshNow(ctx, "prod/app/db")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.VersionStages)
	// Output:
	// [AWSCURRENT]
}
