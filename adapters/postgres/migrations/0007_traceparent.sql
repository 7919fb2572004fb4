-- W3C trace context, for a partner whose case system records OpenTelemetry
-- traces: the outbox row may name the span of the transaction that wrote
-- it, and the inbox row names the adapter's span of its delivery. Both stay
-- NULL while the adapter exports no traces.

ALTER TABLE {{schema}}.outbox ADD COLUMN traceparent text;
COMMENT ON COLUMN {{schema}}.outbox.traceparent IS
    'Optional W3C traceparent (00-<trace id>-<span id>-<flags>) of the case system''s span: when the adapter exports traces, its span of the command is that span''s child. One that is not valid is ignored.';

ALTER TABLE {{schema}}.inbox ADD COLUMN traceparent text;
COMMENT ON COLUMN {{schema}}.inbox.traceparent IS
    'W3C traceparent of the adapter''s span of the delivery, in the referral''s trace, when the adapter exports traces; NULL otherwise.';
