/** The error catalogue stays closed for the kernel and open to plugins; metric names have one owner. */
import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { ParleyError, PluginError, pluginErrorCode, KERNEL_ERROR_CODES } from '../core/errors.js';
import { createCoreMetrics, pluginMetrics } from '../core/metrics.js';

const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    return error instanceof ParleyError ? error.code : `not a ParleyError: ${String(error)}`;
  }
  return 'did not throw';
};

describe('error codes', () => {
  it('gives a plugin PARLEY_<PLUGIN>_<WHAT> codes of its own, usable wherever a kernel code is', () => {
    const code = pluginErrorCode('twilio-sms', 'TWIML_TOO_LARGE');
    expect(code).toBe('PARLEY_TWILIO_SMS_TWIML_TOO_LARGE');
    expect(new PluginError(code, 'too big', 500, { plugin: 'twilio-sms' }).toJSON()).toEqual({ error: { code: 'PARLEY_TWILIO_SMS_TWIML_TOO_LARGE', message: 'too big' } });
  });

  it('refuses a malformed plugin code and one from the kernel catalogue', () => {
    expect(codeOf(() => pluginErrorCode('twilio-sms', 'too large'))).toBe('PARLEY_PLUGIN_INVALID');
    expect(codeOf(() => pluginErrorCode('plugin', 'INVALID'))).toBe('PARLEY_PLUGIN_INVALID');
    expect(KERNEL_ERROR_CODES).toContain('PARLEY_PLUGIN_INVALID');
  });

  it('keeps the kernel catalogue closed: a bare string is not an error code', () => {
    // @ts-expect-error a misspelt kernel code
    expect(new ParleyError('PARLEY_CONFIG_INVALDI', 'x').code).toBe('PARLEY_CONFIG_INVALDI');
    // @ts-expect-error a plugin code not made by pluginErrorCode
    expect(new ParleyError('PARLEY_MY_PLUGIN_OOPS', 'x').code).toBe('PARLEY_MY_PLUGIN_OOPS');
  });
});

describe('plugin metrics', () => {
  it("refuses a plugin a metric the kernel registered, or another plugin's, with a coded error", () => {
    const registry = new Registry();
    createCoreMetrics(registry);
    const sms = pluginMetrics(registry, 'twilio-sms');
    const voice = pluginMetrics(registry, 'twilio-voice');
    expect(codeOf(() => sms.counter({ name: 'parley_messages_in_total', help: 'mine now' }))).toBe('PARLEY_PLUGIN_METRIC_TAKEN');
    const requests = sms.counter({ name: 'parley_twilio_requests_total', help: 'requests', labelNames: ['tenant'] as const });
    expect(() => voice.counter({ name: 'parley_twilio_requests_total', help: 'requests', labelNames: ['tenant'] as const })).toThrow(/registered by plugin "twilio-sms"/);
    expect(codeOf(() => voice.gauge({ name: 'parley_twilio_requests_total', help: 'requests' }))).toBe('PARLEY_PLUGIN_METRIC_TAKEN');
    expect(sms.counter({ name: 'parley_twilio_requests_total', help: 'requests', labelNames: ['tenant'] as const })).toBe(requests);
  });

  it('refuses a metric name outside parley_[a-z0-9_]+', () => {
    expect(codeOf(() => pluginMetrics(new Registry(), 'x').counter({ name: 'requests_total', help: 'h' }))).toBe('PARLEY_PLUGIN_INVALID');
  });
});
