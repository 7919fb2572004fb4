// Package email is the e-mail adapter for organisations without a system
// of their own: offers, reminders and status changes in the organisation's
// language, with signed, expiring, single-use accept and decline links, as
// DESIGN.md section 7 describes. Nothing that identifies a victim is ever
// put in an e-mail.
//
// It imports the domain packages, never another adapter.
package email
