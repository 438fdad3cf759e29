//! Throughput of the offline check on one core.
//!
//! `verify/parse_decrypt_verify_44` is the number that matters: one 44-char
//! OTP (the published otp_offline README vector, all-zero key) goes through
//! `Token::parse` + `verify_offline` (which decrypts, checks the CRC, the
//! private id and the counter). The `parts/*` benches split that cost up.
//! `scripts/bench-core.sh` runs this and prints median ns and verifications/s.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::hint::black_box;

use aes::Aes128;
use aes::cipher::{BlockDecrypt, KeyInit, generic_array::GenericArray};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use yubiotp_core::{
    AesKey, Counter, KeyMaterial, PrivateId, Token, crc16, decrypt, modhex, verify_offline,
};

/// otp_offline README vector: public id cbcdcecfcgch, uid 0708090a0b0c,
/// counter (1, 1), all-zero AES key.
const OTP: &str = "cbcdcecfcgchkgnhckifdncgiflkcediddgrldhuubth";
const ID_LEN: usize = 12;

fn key() -> KeyMaterial {
    KeyMaterial {
        aes_key: AesKey::from_bytes([0; 16]),
        private_id: PrivateId::from_bytes([0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c]),
    }
}

fn bench_verify(c: &mut Criterion) {
    let key = key();
    let last = Counter::new(1, 0);
    // Sanity: the benchmarked path really accepts the OTP.
    let fresh = verify_offline(&Token::parse(OTP, ID_LEN).unwrap(), &key, last).unwrap();
    assert_eq!(fresh.counter, Counter::new(1, 1));

    let mut g = c.benchmark_group("verify");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_decrypt_verify_44", |b| {
        b.iter(|| {
            let token = Token::parse(black_box(OTP), black_box(ID_LEN));
            match token {
                Ok(t) => verify_offline(&t, black_box(&key), black_box(last)).is_ok(),
                Err(_) => false,
            }
        });
    });
    let token = Token::parse(OTP, ID_LEN).unwrap();
    g.bench_function("verify_parsed", |b| {
        b.iter(|| verify_offline(black_box(&token), black_box(&key), black_box(last)).is_ok());
    });
    g.finish();
}

fn bench_parts(c: &mut Criterion) {
    let key = key();
    let token = Token::parse(OTP, ID_LEN).unwrap();
    let ct_text = &OTP.as_bytes()[ID_LEN..];
    let ct = *token.ciphertext.expose_bytes();
    let zero = [0u8; 16];

    let mut g = c.benchmark_group("parts");
    g.throughput(Throughput::Elements(1));
    g.bench_function("token_parse_44", |b| {
        b.iter(|| Token::parse(black_box(OTP), black_box(ID_LEN)).is_ok());
    });
    g.bench_function("modhex_decode_32", |b| {
        b.iter(|| {
            let mut out = [0u8; 16];
            modhex::decode_into(black_box(ct_text), &mut out).unwrap();
            out
        });
    });
    g.bench_function("aes128_key_schedule_and_decrypt", |b| {
        b.iter(|| {
            let cipher = Aes128::new(GenericArray::from_slice(black_box(&zero)));
            let mut block = GenericArray::clone_from_slice(black_box(&ct));
            cipher.decrypt_block(&mut block);
            block
        });
    });
    let cipher = Aes128::new(GenericArray::from_slice(&zero));
    g.bench_function("aes128_decrypt_prekeyed", |b| {
        b.iter(|| {
            let mut block = GenericArray::clone_from_slice(black_box(&ct));
            black_box(&cipher).decrypt_block(&mut block);
            block
        });
    });
    g.bench_function("core_decrypt", |b| {
        b.iter(|| decrypt(black_box(&token.ciphertext), black_box(&key.aes_key)).crc_ok);
    });
    let plain = {
        let mut block = GenericArray::clone_from_slice(&ct);
        cipher.decrypt_block(&mut block);
        let raw: [u8; 16] = block.into();
        raw
    };
    assert!(crc16::is_valid(&plain));
    g.bench_function("crc16_16", |b| {
        b.iter(|| crc16::crc16(black_box(&plain)));
    });
    g.finish();
}

criterion_group!(benches, bench_verify, bench_parts);
criterion_main!(benches);
