// Package webhook delivers Rotor's events to HTTP webhooks, shaped as the
// Amazon EventBridge events AWS Secrets Manager emits, at least once, from
// the persistent outbox in the store.
//
// # Events
//
// An Event is an EventBridge event (version "0", source
// "aws.secretsmanager", resources [secret ARN], time in whole seconds, UTC).
// RotationEvent shapes a rotation record as the CloudTrail-derived event
// AWS sends for its service events (detail-type "AWS Service Event via
// CloudTrail", detail.eventName RotationStarted, RotationFailed, …) with a
// "rotor" object carrying the version id, step, function and attempt.
// LabelEvent shapes a staging label move as AWS's native "Secret Label
// Updated" event, with "previousVersionId" and "removed" added; like AWS, it
// declines AWSPENDING and AWSPREVIOUS moves. No event carries a secret
// value.
//
// # Delivery contract
//
// Enqueue writes one outbox entry per (event, target) in one store
// transaction and wakes the delivery loop; Run delivers until its context
// ends. The outbox lives in the store, so entries survive restarts: a
// Dispatcher started on the same store delivers what an earlier one left.
//
//   - At least once. An entry is deleted only after its target answered
//     2xx. An event may arrive twice when a 2xx response was lost, or when
//     the process stopped between the response and the delete; receivers
//     deduplicate by X-Rotor-Event-Id, which is the event's id (the same
//     for every target and every attempt).
//   - In order per target. A target receives its entries in outbox order
//     (Enqueue order): an entry is not attempted while an earlier, not
//     parked entry for the same target waits. A failing entry therefore
//     holds back its target's later entries until it succeeds or is parked;
//     other targets are not held back (each target has its own lane).
//   - Retries. A failed attempt (transport error, timeout, non-2xx status;
//     redirects are not followed, so a 3xx is a failure) is retried after
//     BackoffBase·2^(attempt-1), capped at BackoffMax, with ±25 % jitter.
//   - Parking. After MaxAttempts failed attempts the entry is parked: kept
//     for inspection (Parked, with LastError) and counted by Backlog, no
//     longer attempted, and no longer holding back its target. Redrive
//     makes it pending again; it is then delivered before the target's
//     later pending entries, but entries that went past it while it was
//     parked are not recalled, so a parked entry is the one place where a
//     receiver may see events out of order. Entries for a target that is no
//     longer configured are parked when Run starts, with LastError "target
//     not configured".
//   - The known gap. The caller commits its change first and calls Enqueue
//     afterwards. If the process dies between the two, or Enqueue fails, the
//     event is lost: it never reached the outbox. Closing the gap needs the
//     domain to write the outbox entries in its own transaction.
//
// # Requests and their signature
//
// Each delivery is a POST of the event JSON (Content-Type
// application/json; the bytes are those stored at Enqueue) with the headers
//
//	User-Agent:               rotor-webhook/1
//	X-Rotor-Event-Id:         the event id (a UUID)
//	X-Rotor-Delivery-Attempt: 1 for the first attempt, 2 for the next, …
//	X-Rotor-Timestamp:        Unix time of this attempt, in seconds
//	X-Rotor-Signature:        v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//
// A receiver checks a delivery as Stripe's receivers do: take the raw body
// bytes (before any JSON parsing) and the X-Rotor-Timestamp header exactly
// as sent, compute HMAC-SHA256 keyed with the target's secret over
// "<timestamp>.<body>", hex-encode it and compare it in constant time with
// the value after "v1="; then reject the request when the timestamp is
// more than a few minutes (Verify's default: 5) from the receiver's clock,
// which bounds replays. The header may list several comma-separated
// "v1=" values (e.g. during a secret rollover); one match suffices, and
// unknown schemes are ignored. Verify does all of this for receivers written
// in Go; Sign computes the header value.
//
// # Concurrency
//
// A Dispatcher is safe for concurrent use. Run may run once at a time per
// Dispatcher, and only one Dispatcher should run per store (on a shared
// store, only the node that holds the scheduler lease): two would deliver
// the same entries twice and out of order. Lanes rely on the store's
// serialised writes, which make an entry's Seq increase in commit order; a
// lane rescans the outbox from the start every minute as a safety net.
package webhook
