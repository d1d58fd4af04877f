#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| iggy_broker_fuzz::send_batch(data));
