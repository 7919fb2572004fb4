// Package referral is the referral lifecycle of DESIGN.md section 4 as a
// pure state machine over events. It imports only the standard library
// and the [events] contract: no I/O, no clock, no randomness, so every
// transition can be tested on its own and every routing-service instance
// computes the same thing.
//
// # State
//
// A referral's [State] is the fold ([Fold]) of the events on its subject
// in REFERRALS, applied one at a time with [Apply]. A referral has one
// needs profile and one [Placement] per need group of the plan; each
// placement is offered to its ranked candidates one after the other:
//
//	referral:  requested → planned → in_progress → completed | partially_completed | failed
//	           (any open status) → cancelled (withdrawn);  (any status) → erased
//	placement: planned → offered → accepted → in_progress ⇄ on_hold → completed
//	                        ├→ declined ┐
//	                        └→ expired ─┴→ offered (next candidate) | failed (unmatched)
//	           open placements → cancelled when the referral is withdrawn
//
// The referral's status after planned is derived by [Apply] from its
// placements, with no event of its own: in_progress once a placement is
// accepted; when every placement is closed, completed if all completed
// and the plan covered every need, failed if none completed, else
// partially_completed. A completed placement counts as completed whatever
// its outcome code (supported, unable_to_contact, ...). cancelled comes
// from referral.withdrawn and erased from referral.erased.
//
// # Commands
//
// The routing service calls [Decide] for each command an organisation
// sends, with the sender ([Actor]) it established from the subject the
// command arrived on. Decide authorises the command (who may do what in
// which state) and returns a [Decision]: record the command's own
// CloudEvent unchanged, then append the routing service's consequences,
// such as the next offer after a decline or referral.unmatched when no
// candidate is left. Because the recorded command keeps its source, Apply
// checks the same rules again when it folds the log, and a forged or
// misplaced event can never enter a State.
//
// Planning needs the directory, so it is not here: the routing service
// appends referral.planned itself and then the events of
// [OffersAfterPlan]. A fired deadline timer goes to [OnTimer]; a timer for
// an attempt that was already answered yields nothing, so timers need not
// be cancelled. [Pending] recomputes whatever a state still owes, which
// lets a restarted service finish what a crash interrupted. Deadlines by
// urgency, with a reminder half way and working days for soon and
// routine, come from [Deadlines]; [Recipients] says which organisations
// must receive each event.
//
// # Errors and idempotency
//
// Every rejection is an *[Error] with a code (forbidden, conflict,
// not_found, invalid, erased, duplicate, too_early), a message and a JSON
// pointer, ready for command.rejected ([Error.Problem]); errors.Is matches
// the sentinels ([ErrConflict], ...). Each State remembers the source
// and CloudEvents id of the last [MaxSeenIDs] events it applied (an id is
// unique per source only): applying or deciding one again returns the
// unchanged state with [ErrDuplicate], which callers treat as success.
//
// A command from an organisation that is not a party to the referral (its
// referrer, or an organisation offered one of its placements) is rejected
// exactly as a command about a referral that does not exist
// ([ErrNotFound]), so that it learns neither that the referral exists nor
// its state. After erasure, which forgets the parties, every organisation's
// command gets that answer too (a coordinator's gets [ErrErased]; a re-sent
// erase is a duplicate), and routing events are rejected with [ErrErased].
package referral
