package routing

// OwnEvent exposes ownEvent to the external tests.
var OwnEvent = ownEvent

// FitsMask is fitsMask, for the test of the masks' widths.
var FitsMask = fitsMask
