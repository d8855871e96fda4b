-- 01_crypto: known-answer tests of the crypto core (HKDF-SHA-256, HMAC-SHA-256,
-- AES-256-GCM) and the failure modes of crypto_open.
--   RFC 5869 appendix A.1-A.3, RFC 4231 section 4 (test cases 1-4, 6, 7),
--   McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 13-16
--   (the 256-bit-key vectors of NIST's GCM validation).
BEGIN;
SELECT plan(38);

-- A helper that opens a sealed value and reports the SQLSTATE ('ok' when it opens).
CREATE FUNCTION pg_temp.open_state(k bytea, n bytea, a bytea, s bytea) RETURNS text
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM utilix.crypto_open(k, n, a, s);
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;

-- ---------------------------------------------------------------- HKDF
SELECT is(utilix.crypto_hkdf(decode(repeat('0b', 22), 'hex'),
                             '\x000102030405060708090a0b0c'::bytea,
                             '\xf0f1f2f3f4f5f6f7f8f9'::bytea, 42),
          '\x3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865'::bytea,
          'HKDF: RFC 5869 test case 1');

SELECT is(utilix.crypto_hkdf(
              (SELECT string_agg(set_byte('\x00'::bytea, 0, i), ''::bytea ORDER BY i) FROM generate_series(0, 79) i),
              (SELECT string_agg(set_byte('\x00'::bytea, 0, i), ''::bytea ORDER BY i) FROM generate_series(96, 175) i),
              (SELECT string_agg(set_byte('\x00'::bytea, 0, i), ''::bytea ORDER BY i) FROM generate_series(176, 255) i),
              82),
          '\xb11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87'::bytea,
          'HKDF: RFC 5869 test case 2 (long inputs)');

SELECT is(utilix.crypto_hkdf(decode(repeat('0b', 22), 'hex'), ''::bytea, ''::bytea, 42),
          '\x8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8'::bytea,
          'HKDF: RFC 5869 test case 3 (empty salt and info)');

SELECT is(length(utilix.crypto_hkdf('\x01'::bytea, ''::bytea, ''::bytea, 8160)), 8160,
          'HKDF: the longest output (255 blocks) is produced');
SELECT throws_ok($$SELECT utilix.crypto_hkdf('\x01'::bytea, ''::bytea, ''::bytea, 0)$$, '22023', NULL,
                 'HKDF: output length 0 is refused');
SELECT throws_ok($$SELECT utilix.crypto_hkdf('\x01'::bytea, ''::bytea, ''::bytea, 8161)$$, '22023', NULL,
                 'HKDF: output length above 255 blocks is refused');

-- ---------------------------------------------------------------- HMAC
SELECT is(utilix.crypto_hmac(decode(repeat('0b', 20), 'hex'), convert_to('Hi There', 'UTF8')),
          '\xb0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7'::bytea,
          'HMAC-SHA-256: RFC 4231 test case 1');
SELECT is(utilix.crypto_hmac(convert_to('Jefe', 'UTF8'), convert_to('what do ya want for nothing?', 'UTF8')),
          '\x5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843'::bytea,
          'HMAC-SHA-256: RFC 4231 test case 2 (short key)');
SELECT is(utilix.crypto_hmac(decode(repeat('aa', 20), 'hex'), decode(repeat('dd', 50), 'hex')),
          '\x773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe'::bytea,
          'HMAC-SHA-256: RFC 4231 test case 3');
SELECT is(utilix.crypto_hmac('\x0102030405060708090a0b0c0d0e0f10111213141516171819'::bytea,
                             decode(repeat('cd', 50), 'hex')),
          '\x82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b'::bytea,
          'HMAC-SHA-256: RFC 4231 test case 4');
SELECT is(utilix.crypto_hmac(decode(repeat('aa', 131), 'hex'),
                             convert_to('Test Using Larger Than Block-Size Key - Hash Key First', 'UTF8')),
          '\x60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54'::bytea,
          'HMAC-SHA-256: RFC 4231 test case 6 (key longer than a block)');
SELECT is(utilix.crypto_hmac(decode(repeat('aa', 131), 'hex'),
                             convert_to('This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.', 'UTF8')),
          '\x9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2'::bytea,
          'HMAC-SHA-256: RFC 4231 test case 7 (key and data longer than a block)');

-- ---------------------------------------------------------------- AES-256-GCM
\set k0   '''\\x0000000000000000000000000000000000000000000000000000000000000000''::bytea'
\set n0   '''\\x000000000000000000000000''::bytea'
\set k15  '''\\xfeffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308''::bytea'
\set n15  '''\\xcafebabefacedbaddecaf888''::bytea'
\set p15  '''\\xd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255''::bytea'
\set c15  '''\\x522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015adb094dac5d93471bdec1a502270e3cc6c''::bytea'
\set p16  '''\\xd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39''::bytea'
\set a16  '''\\xfeedfacedeadbeeffeedfacedeadbeefabaddad2''::bytea'
\set c16  '''\\x522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f66276fc6ece0f4e1768cddf8853bb2d551b''::bytea'

SELECT is(utilix.crypto_seal(:k0, :n0, ''::bytea, ''::bytea),
          '\x530f8afbc74536b9a963b4f1c4cb738b'::bytea,
          'AES-256-GCM seal: test case 13 (empty plaintext: tag only)');
SELECT is(utilix.crypto_seal(:k0, :n0, ''::bytea, decode(repeat('00', 16), 'hex')),
          '\xcea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919'::bytea,
          'AES-256-GCM seal: test case 14');
SELECT is(utilix.crypto_seal(:k15, :n15, ''::bytea, :p15), :c15,
          'AES-256-GCM seal: test case 15 (four blocks, no AAD)');
SELECT is(utilix.crypto_seal(:k15, :n15, :a16, :p16), :c16,
          'AES-256-GCM seal: test case 16 (partial block, with AAD)');

SELECT is(utilix.crypto_open(:k0, :n0, ''::bytea, '\x530f8afbc74536b9a963b4f1c4cb738b'::bytea), ''::bytea,
          'AES-256-GCM open: test case 13');
SELECT is(utilix.crypto_open(:k0, :n0, ''::bytea, '\xcea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919'::bytea),
          decode(repeat('00', 16), 'hex'),
          'AES-256-GCM open: test case 14');
SELECT is(utilix.crypto_open(:k15, :n15, ''::bytea, :c15), :p15, 'AES-256-GCM open: test case 15');
SELECT is(utilix.crypto_open(:k15, :n15, :a16, :c16), :p16, 'AES-256-GCM open: test case 16');

-- Every single-bit change of nonce, AAD, ciphertext or tag must fail to open with 22000.
SELECT is((SELECT count(*) FROM generate_series(0, 95) b
            WHERE pg_temp.open_state(:k15, set_bit(:n15, b, 1 - get_bit(:n15, b)), :a16, :c16) = '22000'),
          96::bigint, 'every one of the 96 single-bit flips of the nonce fails with 22000');
SELECT is((SELECT count(*) FROM generate_series(0, 159) b
            WHERE pg_temp.open_state(:k15, :n15, set_bit(:a16, b, 1 - get_bit(:a16, b)), :c16) = '22000'),
          160::bigint, 'every one of the 160 single-bit flips of the AAD fails with 22000');
SELECT is((SELECT count(*) FROM generate_series(0, 60 * 8 - 1) b
            WHERE pg_temp.open_state(:k15, :n15, :a16, set_bit(:c16, b, 1 - get_bit(:c16, b))) = '22000'),
          480::bigint, 'every one of the 480 single-bit flips of the ciphertext fails with 22000');
SELECT is((SELECT count(*) FROM generate_series(60 * 8, 76 * 8 - 1) b
            WHERE pg_temp.open_state(:k15, :n15, :a16, set_bit(:c16, b, 1 - get_bit(:c16, b))) = '22000'),
          128::bigint, 'every one of the 128 single-bit flips of the tag fails with 22000');

SELECT is(pg_temp.open_state(:k15, :n15, ''::bytea, :c16), '22000',
          'AES-256-GCM open: a value sealed with AAD does not open without it');
SELECT is(pg_temp.open_state(set_bit(:k15, 0, 1 - get_bit(:k15, 0)), :n15, :a16, :c16), '22000',
          'AES-256-GCM open: a key differing in one bit fails with 22000');
SELECT is(pg_temp.open_state(:k15, :n15, :a16, substring(:c16 FROM 1 FOR 75)), '22000',
          'AES-256-GCM open: a truncated sealed value fails with 22000');
SELECT throws_ok($$SELECT utilix.crypto_open('\x0000000000000000000000000000000000000000000000000000000000000000'::bytea,
                                             '\x000000000000000000000000'::bytea, ''::bytea,
                                             '\x530f8afbc74536b9a963b4f1c4cb73'::bytea)$$,
                 '22000', NULL, 'AES-256-GCM open: a value shorter than a tag fails with 22000');
SELECT throws_ok($$SELECT utilix.crypto_open('\x0000000000000000000000000000000000000000000000000000000000000000'::bytea,
                                             '\x000000000000000000000000'::bytea, ''::bytea, ''::bytea)$$,
                 '22000', NULL, 'AES-256-GCM open: an empty value fails with 22000');

SELECT throws_ok($$SELECT utilix.crypto_seal(decode(repeat('00', 31), 'hex'), '\x000000000000000000000000'::bytea, ''::bytea, '\x00'::bytea)$$,
                 '22023', NULL, 'AES-256-GCM seal: a 31-byte key is refused with 22023');
SELECT throws_ok($$SELECT utilix.crypto_open(decode(repeat('00', 33), 'hex'), '\x000000000000000000000000'::bytea, ''::bytea,
                                             '\x530f8afbc74536b9a963b4f1c4cb738b'::bytea)$$,
                 '22023', NULL, 'AES-256-GCM open: a 33-byte key is refused with 22023');
SELECT throws_ok($$SELECT utilix.crypto_seal(decode(repeat('00', 32), 'hex'), '\x0000000000000000000000'::bytea, ''::bytea, '\x00'::bytea)$$,
                 '22023', NULL, 'AES-256-GCM seal: an 11-byte nonce is refused with 22023');
SELECT throws_ok($$SELECT utilix.crypto_open(decode(repeat('00', 32), 'hex'), '\x00000000000000000000000000'::bytea, ''::bytea,
                                             '\x530f8afbc74536b9a963b4f1c4cb738b'::bytea)$$,
                 '22023', NULL, 'AES-256-GCM open: a 13-byte nonce is refused with 22023');

-- ---------------------------------------------------------------- random
SELECT is(length(utilix.crypto_random(32)), 32, 'crypto_random returns the requested number of bytes');
SELECT isnt(utilix.crypto_random(32), utilix.crypto_random(32), 'two calls of crypto_random differ');
SELECT throws_ok($$SELECT utilix.crypto_random(-1)$$, '22023', NULL, 'crypto_random refuses a negative length');

-- ---------------------------------------------------------------- privileges
CREATE ROLE c01_nobody NOLOGIN;
CREATE ROLE c01_operator NOLOGIN IN ROLE utilix_operator;
SET LOCAL ROLE c01_nobody;
SELECT throws_ok($$SELECT utilix.crypto_hmac('\x00'::bytea, '\x00'::bytea)$$, '42501', NULL,
                 'a role that is not an operator cannot call the crypto core');
RESET ROLE;
SET LOCAL ROLE c01_operator;
SELECT is(utilix.crypto_hmac(convert_to('Jefe', 'UTF8'), convert_to('what do ya want for nothing?', 'UTF8')),
          '\x5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843'::bytea,
          'an operator can call the crypto core');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
