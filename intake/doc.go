// Package intake is the public intake source of a node: the pseudo-
// organisation through which a victim who found a service on the public
// pages asks it to contact her (self-referral, issue 11).
//
// A request travels as an ordinary referral: [Intake.Refer] submits a
// referral.requested from the intake organisation ([Config.Org], which
// has no services and never receives an offer) with the needs she chose,
// her country, language, channel, age band and urgency (codes only), the
// consent she gave on the page (method digital, recorded by
// [RecordedBy]) and the chosen organisation as the preferred one, so the
// routing service plans, offers and applies deadlines as for any
// referral. Her contact details are not in it: they were sealed in her
// browser to the chosen organisation's age recipient, and the node keeps
// that envelope (which it cannot open) in [Store] under the referral id.
//
// [Intake.Run] follows the intake organisation's deliveries. When the
// chosen organisation accepts a placement, it sends the envelope as that
// placement's referral.handover and forgets it; the handover reaches the
// accepting organisation only. When another organisation accepts (the
// chosen one declined or let its offer expire), the envelope, sealed to
// the chosen organisation alone, cannot be handed over: it is forgotten
// and that organisation learns of the request without a way to contact
// her, which the caseworker sees from the missing handover. When the
// referral ends unmatched, withdrawn or erased, the envelope is
// forgotten too.
//
// Nothing here names the victim: the routing payload is codes; the
// envelope is ciphertext; the logs say referral ids and outcomes only.
package intake
