package routing

// OwnEvent exposes ownEvent to the external tests.
var OwnEvent = ownEvent
