;; FastLSTM's inference recurrence in WebAssembly SIMD: every time step of a
;; sigmoid-gated LSTM in one call, instead of ~14 tfjs kernel calls per step
;; (each ~30 µs on wasm whatever its size: the whole cost at batch 1).
;;
;; The caller (lstmInference.ts) lays out, in this module's own memory:
;;   proj [batch, steps, 4·P]  x·W + b for every step, gate blocks i, f, c, o
;;                             each P wide (units padded to P, a multiple of 8,
;;                             with zero columns), the c block doubled;
;;   u    [units, 4·P]         the recurrent kernel, same layout and doubling;
;;   mask [batch, steps]       1 or 0 (read only when hasMask);
;;   out  [batch, steps, P]    with seq: h after each step, in processing order;
;;   h, c [batch, P]           zero on entry, the last states on return;
;;   z    [4·P]                scratch.
;; Per step (tfjs LSTMCell): z = proj_t + h·U; i, f, o = σ(z_i, z_f, z_o);
;; g = tanh(z_c) = 2σ(2·z_c) − 1 (the doubled block); c' = f·c + i·g;
;; h' = o·tanh(c'); a masked step keeps h and c. Padded units stay 0.
;;
;; Compiled by `npm run build:wasm` into lstmInferenceWasm.ts;
;; test/wasmModules.test.ts checks the two agree.
(module
  (memory (export "memory") 1)

  ;; e^x, lanes clamped to [-87, 88]: 2^n · p(r), r = x − n·ln 2 (in two
  ;; parts), p the degree-6 Taylor polynomial: relative error below 2e-7.
  (func $exp (param $x v128) (result v128)
    (local $n v128) (local $r v128) (local $p v128)
    (local.set $x (f32x4.min (f32x4.max (local.get $x) (f32x4.splat (f32.const -87))) (f32x4.splat (f32.const 88))))
    (local.set $n (f32x4.nearest (f32x4.mul (local.get $x) (f32x4.splat (f32.const 1.4426950408889634)))))
    (local.set $r (f32x4.sub
      (f32x4.sub (local.get $x) (f32x4.mul (local.get $n) (f32x4.splat (f32.const 0.693359375))))
      (f32x4.mul (local.get $n) (f32x4.splat (f32.const -2.12194440e-4)))))
    (local.set $p (f32x4.splat (f32.const 0.001388888888888889)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (f32x4.splat (f32.const 0.008333333333333333))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (f32x4.splat (f32.const 0.041666666666666664))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (f32x4.splat (f32.const 0.16666666666666666))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (f32x4.splat (f32.const 0.5))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (f32x4.splat (f32.const 1))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (f32x4.splat (f32.const 1))))
    (f32x4.mul (local.get $p)
      (i32x4.shl (i32x4.add (i32x4.trunc_sat_f32x4_s (local.get $n)) (i32x4.splat (i32.const 127))) (i32.const 23))))

  ;; σ(x) = 1 / (1 + e^−x)
  (func $sigmoid (param $x v128) (result v128)
    (f32x4.div (f32x4.splat (f32.const 1))
      (f32x4.add (f32x4.splat (f32.const 1)) (call $exp (f32x4.neg (local.get $x))))))

  (func (export "lstm")
    (param $proj i32) (param $u i32) (param $mask i32) (param $out i32) (param $h i32) (param $c i32) (param $z i32)
    (param $batch i32) (param $steps i32) (param $units i32) (param $padded i32)
    (param $back i32) (param $seq i32) (param $hasMask i32)
    (local $width i32) (local $t i32) (local $time i32) (local $b i32) (local $k i32) (local $j i32)
    (local $projRow i32) (local $hRow i32) (local $cRow i32) (local $uAt i32) (local $at i32) (local $outRow i32)
    (local $hk v128) (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $a4 v128) (local $a5 v128) (local $a6 v128) (local $a7 v128)
    (local $gi v128) (local $gf v128) (local $gg v128) (local $go v128) (local $cn v128)
    (local.set $width (i32.shl (local.get $padded) (i32.const 2)))
    (local.set $t (i32.const 0))
    (block $stepsDone
      (loop $stepLoop
        (br_if $stepsDone (i32.ge_u (local.get $t) (local.get $steps)))
        (local.set $time (if (result i32) (local.get $back)
          (then (i32.sub (i32.sub (local.get $steps) (i32.const 1)) (local.get $t)))
          (else (local.get $t))))
        (local.set $b (i32.const 0))
        (block $batchDone
          (loop $batchLoop
            (br_if $batchDone (i32.ge_u (local.get $b) (local.get $batch)))
            (local.set $hRow (i32.add (local.get $h) (i32.shl (i32.mul (local.get $b) (local.get $padded)) (i32.const 2))))
            (local.set $cRow (i32.add (local.get $c) (i32.shl (i32.mul (local.get $b) (local.get $padded)) (i32.const 2))))
            ;; A step the mask drops keeps h and c.
            (if (i32.or (i32.eqz (local.get $hasMask))
                  (f32.ne (f32.load (i32.add (local.get $mask)
                    (i32.shl (i32.add (i32.mul (local.get $b) (local.get $steps)) (local.get $time)) (i32.const 2))))
                    (f32.const 0)))
              (then
                (local.set $projRow (i32.add (local.get $proj)
                  (i32.shl (i32.mul (i32.add (i32.mul (local.get $b) (local.get $steps)) (local.get $time)) (local.get $width)) (i32.const 2))))
                ;; z = proj_t + h·U, 32 columns at a time (8 independent sums).
                (local.set $j (i32.const 0))
                (block $colsDone
                  (loop $colLoop
                    (br_if $colsDone (i32.ge_u (local.get $j) (local.get $width)))
                    (local.set $at (i32.add (local.get $projRow) (i32.shl (local.get $j) (i32.const 2))))
                    (local.set $a0 (v128.load offset=0 (local.get $at)))
                    (local.set $a1 (v128.load offset=16 (local.get $at)))
                    (local.set $a2 (v128.load offset=32 (local.get $at)))
                    (local.set $a3 (v128.load offset=48 (local.get $at)))
                    (local.set $a4 (v128.load offset=64 (local.get $at)))
                    (local.set $a5 (v128.load offset=80 (local.get $at)))
                    (local.set $a6 (v128.load offset=96 (local.get $at)))
                    (local.set $a7 (v128.load offset=112 (local.get $at)))
                    (local.set $uAt (i32.add (local.get $u) (i32.shl (local.get $j) (i32.const 2))))
                    (local.set $k (i32.const 0))
                    (block $kDone
                      (loop $kLoop
                        (br_if $kDone (i32.ge_u (local.get $k) (local.get $units)))
                        (local.set $hk (v128.load32_splat (i32.add (local.get $hRow) (i32.shl (local.get $k) (i32.const 2)))))
                        (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $hk) (v128.load offset=0 (local.get $uAt)))))
                        (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $hk) (v128.load offset=16 (local.get $uAt)))))
                        (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $hk) (v128.load offset=32 (local.get $uAt)))))
                        (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $hk) (v128.load offset=48 (local.get $uAt)))))
                        (local.set $a4 (f32x4.add (local.get $a4) (f32x4.mul (local.get $hk) (v128.load offset=64 (local.get $uAt)))))
                        (local.set $a5 (f32x4.add (local.get $a5) (f32x4.mul (local.get $hk) (v128.load offset=80 (local.get $uAt)))))
                        (local.set $a6 (f32x4.add (local.get $a6) (f32x4.mul (local.get $hk) (v128.load offset=96 (local.get $uAt)))))
                        (local.set $a7 (f32x4.add (local.get $a7) (f32x4.mul (local.get $hk) (v128.load offset=112 (local.get $uAt)))))
                        (local.set $uAt (i32.add (local.get $uAt) (i32.shl (local.get $width) (i32.const 2))))
                        (local.set $k (i32.add (local.get $k) (i32.const 1)))
                        (br $kLoop)))
                    (local.set $at (i32.add (local.get $z) (i32.shl (local.get $j) (i32.const 2))))
                    (v128.store offset=0 (local.get $at) (local.get $a0))
                    (v128.store offset=16 (local.get $at) (local.get $a1))
                    (v128.store offset=32 (local.get $at) (local.get $a2))
                    (v128.store offset=48 (local.get $at) (local.get $a3))
                    (v128.store offset=64 (local.get $at) (local.get $a4))
                    (v128.store offset=80 (local.get $at) (local.get $a5))
                    (v128.store offset=96 (local.get $at) (local.get $a6))
                    (v128.store offset=112 (local.get $at) (local.get $a7))
                    (local.set $j (i32.add (local.get $j) (i32.const 32)))
                    (br $colLoop)))
                ;; The gates, 4 units at a time.
                (local.set $k (i32.const 0))
                (block $unitsDone
                  (loop $unitLoop
                    (br_if $unitsDone (i32.ge_u (local.get $k) (local.get $padded)))
                    (local.set $at (i32.add (local.get $z) (i32.shl (local.get $k) (i32.const 2))))
                    (local.set $gi (call $sigmoid (v128.load (local.get $at))))
                    (local.set $at (i32.add (local.get $at) (i32.shl (local.get $padded) (i32.const 2))))
                    (local.set $gf (call $sigmoid (v128.load (local.get $at))))
                    (local.set $at (i32.add (local.get $at) (i32.shl (local.get $padded) (i32.const 2))))
                    (local.set $gg (f32x4.sub (f32x4.mul (call $sigmoid (v128.load (local.get $at))) (f32x4.splat (f32.const 2)))
                                              (f32x4.splat (f32.const 1))))
                    (local.set $at (i32.add (local.get $at) (i32.shl (local.get $padded) (i32.const 2))))
                    (local.set $go (call $sigmoid (v128.load (local.get $at))))
                    (local.set $at (i32.add (local.get $cRow) (i32.shl (local.get $k) (i32.const 2))))
                    (local.set $cn (f32x4.add (f32x4.mul (local.get $gf) (v128.load (local.get $at)))
                                              (f32x4.mul (local.get $gi) (local.get $gg))))
                    (v128.store (local.get $at) (local.get $cn))
                    (v128.store (i32.add (local.get $hRow) (i32.shl (local.get $k) (i32.const 2)))
                      (f32x4.mul (local.get $go)
                        (f32x4.sub (f32x4.mul (call $sigmoid (f32x4.mul (local.get $cn) (f32x4.splat (f32.const 2))))
                                              (f32x4.splat (f32.const 2)))
                                   (f32x4.splat (f32.const 1)))))
                    (local.set $k (i32.add (local.get $k) (i32.const 4)))
                    (br $unitLoop)))))
            ;; With seq: this step's h (kept or new) in processing order.
            (if (local.get $seq)
              (then
                (local.set $outRow (i32.add (local.get $out)
                  (i32.shl (i32.mul (i32.add (i32.mul (local.get $b) (local.get $steps)) (local.get $t)) (local.get $padded)) (i32.const 2))))
                (memory.copy (local.get $outRow) (local.get $hRow) (i32.shl (local.get $padded) (i32.const 2)))))
            (local.set $b (i32.add (local.get $b) (i32.const 1)))
            (br $batchLoop)))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $stepLoop))))
)
