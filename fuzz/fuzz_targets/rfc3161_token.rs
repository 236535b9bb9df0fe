#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sealtrail_spec::roundtrip::rfc3161_token(data));
