import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { guessMode, parse, render, validate } from './value-format';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('value formats', () => {
  it('round-trips every mode to the same bytes', () => {
    const samples = [bytes('plain text'), bytes('{"a":[1,2]}'), new Uint8Array([0, 255, 16, 7, 200]), bytes('x'.repeat(100))];
    for (const b of samples) {
      for (const mode of ['hex', 'base64'] as const) assert.deepEqual(parse(render(b, mode), mode), b, mode);
    }
    assert.deepEqual(parse(render(bytes('héllo'), 'text'), 'text'), bytes('héllo'));
  });
  it('guesses json, text and binary', () => {
    assert.equal(guessMode(bytes(' {"a":1} ')), 'json');
    assert.equal(guessMode(bytes('{not json')), 'text');
    assert.equal(guessMode(new Uint8Array([0xff, 0xfe, 0])), 'hex');
  });
  it('detects YAML documents but not prose with a colon', () => {
    assert.equal(guessMode(bytes('server:\n  port: 8080\n  hosts:\n    - a\n    - b\n')), 'yaml');
    assert.equal(guessMode(bytes('---\nname: x\n')), 'yaml');
    assert.equal(guessMode(bytes('- one\n- two\n')), 'yaml');
    assert.equal(guessMode(bytes('note: remember the milk')), 'text');
    assert.equal(guessMode(bytes('Dear team,\nthe deploy is at 5: be ready.')), 'text');
    assert.equal(guessMode(bytes('a: [1, 2\nb: 3')), 'text');
  });
  it('validates JSON, YAML and base64 with a reason', () => {
    assert.equal(validate('{"a":1}', 'json'), null);
    assert.ok(validate('{"a":', 'json'));
    assert.equal(validate('a: 1\nb: [x, y]', 'yaml'), null);
    assert.ok(validate('a: [1, 2', 'yaml'));
    assert.ok(validate('not*base64', 'base64'));
    assert.ok(validate('abc', 'hex'));
  });
});
