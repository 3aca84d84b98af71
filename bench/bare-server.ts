/** The baseline: a bare express 5 handler answering a fixed reply, nothing else. */
import express from 'express';

const app = express();
app.use(express.json());
app.use(express.urlencoded({ extended: false }));
app.post('/v1/tenants/:tenant/messages', (_req, res) => {
  res.json({ replies: [{ text: "We're open Monday to Friday, 8am to 6pm." }] });
});
app.post('/twilio/sms', (_req, res) => {
  res.type('text/xml').send('<?xml version="1.0" encoding="UTF-8"?><Response><Message>We are open 8am to 6pm.</Message></Response>');
});
const server = app.listen(0, '127.0.0.1', () => {
  const address = server.address();
  console.log(`BARE_READY ${typeof address === 'object' && address ? address.port : 0}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
