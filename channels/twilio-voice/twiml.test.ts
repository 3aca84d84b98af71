import { describe, expect, it } from 'vitest';
import { hangupTwiml, holdTwiml, isGoodbye, listenTwiml, MAX_SAY_CHARS, replyTwiml, speakable, type VoiceScript } from './twiml.js';
import { DEFAULT_GOODBYES, settingsSchema } from './types.js';

const script: VoiceScript = { base: 'https://hooks.example.com/parley', settings: settingsSchema.parse({ handoffNumber: '+15550100100' }), language: 'en-US' };
const DECL = '<?xml version="1.0" encoding="UTF-8"?>';

describe('listenTwiml', () => {
  it('speaks inside a speech-and-keys Gather that posts the turn back, even on silence', () => {
    expect(listenTwiml(script, 3, 'Hello & welcome')).toBe(
      `${DECL}<Response><Gather input="speech dtmf" action="https://hooks.example.com/parley/twilio/voice/gather?turn=3" method="POST" language="en-US" speechTimeout="auto" timeout="5" actionOnEmptyResult="true"><Say voice="Polly.Joanna-Neural" language="en-US">Hello &amp; welcome</Say></Gather></Response>`,
    );
  });

  it('carries the re-prompt count in the action URL', () => {
    expect(listenTwiml(script, 2, 'again?', 1)).toContain('action="https://hooks.example.com/parley/twilio/voice/gather?turn=2&amp;retry=1"');
  });
});

describe('replyTwiml', () => {
  it('transfers to the hand-off number with a dial action, or apologises when none is set', () => {
    const dial = replyTwiml(script, 4, 'Connecting you.', true);
    expect(dial).toContain('<Dial action="https://hooks.example.com/parley/twilio/voice/dial?turn=4" method="POST">+15550100100</Dial>');
    const none = replyTwiml({ ...script, settings: settingsSchema.parse({}) }, 4, 'Connecting you.', true);
    expect(none).not.toContain('<Dial');
    expect(none).toContain("Connecting you. I'm sorry, nobody could take your call right now.");
  });

  it('listens silently when the pipeline said nothing', () => {
    expect(replyTwiml(script, 2, '', false)).not.toContain('<Say');
  });
});

describe('holdTwiml and hangupTwiml', () => {
  it('holds with a message and a pause, then asks again for the next turn', () => {
    const xml = holdTwiml(script, 5);
    expect(xml).toMatch(/<Say[^>]*>One moment, please\.<\/Say><Pause length="20"\/><Gather[^>]*turn=5/);
  });

  it('says goodbye and hangs up', () => {
    expect(hangupTwiml(script, 'Bye now')).toBe(`${DECL}<Response><Say voice="Polly.Joanna-Neural" language="en-US">Bye now</Say><Hangup/></Response>`);
  });
});

describe('speakable', () => {
  it('drops characters XML cannot carry and collapses whitespace', () => {
    expect(speakable('Hi\u0000 there\n\n friend')).toBe('Hi there friend');
  });

  it('cuts text Twilio would refuse after a sentence', () => {
    const text = 'This is a sentence. '.repeat(400);
    const spoken = speakable(text);
    expect(spoken.length).toBeLessThanOrEqual(MAX_SAY_CHARS);
    expect(spoken.endsWith('.')).toBe(true);
  });
});

describe('isGoodbye', () => {
  it.each(['Goodbye', 'bye!', 'Okay, thanks. Bye!', "That's all, thank you", 'that’s all', 'Bye bye'])('%j ends the call', (utterance) => {
    expect(isGoodbye(utterance, DEFAULT_GOODBYES)).toBe(true);
  });

  it.each(['I want to say bye to my old dentist and book with you instead please', 'Is that all I need to bring?', 'byes', 'hello', ''])('%j does not', (utterance) => {
    expect(isGoodbye(utterance, DEFAULT_GOODBYES)).toBe(false);
  });
});
