;; The sharded optimizer update of workerPool's replicas, in WebAssembly SIMD.
;;
;; Every function works on float32 regions of the pool's shared memory
;; (imported as "env" "memory"), given as byte offsets, `n` elements long,
;; four at a time: the caller pads each region and each replica's chunk to a
;; multiple of 4 elements (the padding holds zeros and stays zero).
;; The arithmetic is tfjs-core 4.x's, operation for operation and in float32,
;; so a replica's update gives what the tfjs optimizer of the same class gives
;; on one thread, up to the rounding of its bias corrections (see sharedUpdate.ts).
;;
;; Compiled by `npm run build:wasm` (scripts/build-wasm.ts, with wabt)
;; into updateWasm.ts; test/wasmModules.test.ts checks the two agree.
(module
  (import "env" "memory" (memory 1 65536 shared))

  ;; dst = s * src (first = 1) or dst = dst + s * src (first = 0): one
  ;; replica's share of the batch mean gradient, added in replica order.
  (func (export "addScaled") (param $dst i32) (param $src i32) (param $n i32) (param $s f32) (param $first i32)
    (local $end i32) (local $scale v128) (local $x v128)
    (local.set $end (i32.add (local.get $dst) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $scale (f32x4.splat (local.get $s)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $dst) (local.get $end)))
        (local.set $x (f32x4.mul (v128.load (local.get $src)) (local.get $scale)))
        (if (i32.eqz (local.get $first))
          (then (local.set $x (f32x4.add (v128.load (local.get $dst)) (local.get $x)))))
        (v128.store (local.get $dst) (local.get $x))
        (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
        (local.set $src (i32.add (local.get $src) (i32.const 16)))
        (br $next))))

  ;; Sum of squares, accumulated in float64 (for a global-norm clip).
  (func (export "sumSquares") (param $p i32) (param $n i32) (result f64)
    (local $end i32) (local $x v128) (local $acc v128)
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $acc (f64x2.splat (f64.const 0)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $x (v128.load (local.get $p)))
        (local.set $acc (f64x2.add (local.get $acc)
          (f64x2.mul (f64x2.promote_low_f32x4 (local.get $x)) (f64x2.promote_low_f32x4 (local.get $x)))))
        (local.set $x (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $x) (local.get $x)))
        (local.set $acc (f64x2.add (local.get $acc)
          (f64x2.mul (f64x2.promote_low_f32x4 (local.get $x)) (f64x2.promote_low_f32x4 (local.get $x)))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $next)))
    (f64.add (f64x2.extract_lane 0 (local.get $acc)) (f64x2.extract_lane 1 (local.get $acc))))

  ;; p = p * s
  (func (export "scale") (param $p i32) (param $n i32) (param $s f32)
    (local $end i32) (local $scale v128)
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $scale (f32x4.splat (local.get $s)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (v128.store (local.get $p) (f32x4.mul (v128.load (local.get $p)) (local.get $scale)))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $next))))

  ;; SGD: w = c * g + w, with c = -learningRate.
  (func (export "sgd") (param $w i32) (param $g i32) (param $n i32) (param $c f32)
    (local $end i32) (local $cv v128)
    (local.set $end (i32.add (local.get $w) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $cv (f32x4.splat (local.get $c)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $w) (local.get $end)))
        (v128.store (local.get $w)
          (f32x4.add (f32x4.mul (local.get $cv) (v128.load (local.get $g))) (v128.load (local.get $w))))
        (local.set $w (i32.add (local.get $w) (i32.const 16)))
        (local.set $g (i32.add (local.get $g) (i32.const 16)))
        (br $next))))

  ;; Momentum: acc' = m * acc + g; w = c * acc' + w, or with Nesterov
  ;; w = c * (g + acc' * m) + w; c = -learningRate.
  (func (export "momentum") (param $w i32) (param $g i32) (param $acc i32) (param $n i32)
        (param $c f32) (param $m f32) (param $nesterov i32)
    (local $end i32) (local $cv v128) (local $mv v128) (local $gv v128) (local $a v128)
    (local.set $end (i32.add (local.get $w) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $cv (f32x4.splat (local.get $c)))
    (local.set $mv (f32x4.splat (local.get $m)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $w) (local.get $end)))
        (local.set $gv (v128.load (local.get $g)))
        (local.set $a (f32x4.add (f32x4.mul (local.get $mv) (v128.load (local.get $acc))) (local.get $gv)))
        (v128.store (local.get $acc) (local.get $a))
        (if (local.get $nesterov)
          (then (local.set $a (f32x4.add (local.get $gv) (f32x4.mul (local.get $a) (local.get $mv))))))
        (v128.store (local.get $w) (f32x4.add (f32x4.mul (local.get $cv) (local.get $a)) (v128.load (local.get $w))))
        (local.set $w (i32.add (local.get $w) (i32.const 16)))
        (local.set $g (i32.add (local.get $g) (i32.const 16)))
        (local.set $acc (i32.add (local.get $acc) (i32.const 16)))
        (br $next))))

  ;; Adam: m' = m * b1 + g * (1 - b1); v' = v * b2 + g² * (1 - b2);
  ;; w = ((m' / (1 - b1^t)) / (sqrt(v' / (1 - b2^t)) + eps)) * c + w, c = -learningRate.
  (func (export "adam") (param $w i32) (param $g i32) (param $m i32) (param $v i32) (param $n i32)
        (param $c f32) (param $b1 f32) (param $b2 f32) (param $oneMinusB1 f32) (param $oneMinusB2 f32)
        (param $oneMinusAccB1 f32) (param $oneMinusAccB2 f32) (param $eps f32)
    (local $end i32) (local $gv v128) (local $mv v128) (local $vv v128)
    (local $cv v128) (local $b1v v128) (local $b2v v128) (local $a1v v128) (local $a2v v128)
    (local $c1v v128) (local $c2v v128) (local $epsv v128)
    (local.set $end (i32.add (local.get $w) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $cv (f32x4.splat (local.get $c)))
    (local.set $b1v (f32x4.splat (local.get $b1)))
    (local.set $b2v (f32x4.splat (local.get $b2)))
    (local.set $a1v (f32x4.splat (local.get $oneMinusB1)))
    (local.set $a2v (f32x4.splat (local.get $oneMinusB2)))
    (local.set $c1v (f32x4.splat (local.get $oneMinusAccB1)))
    (local.set $c2v (f32x4.splat (local.get $oneMinusAccB2)))
    (local.set $epsv (f32x4.splat (local.get $eps)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $w) (local.get $end)))
        (local.set $gv (v128.load (local.get $g)))
        (local.set $mv (f32x4.add (f32x4.mul (v128.load (local.get $m)) (local.get $b1v))
                                  (f32x4.mul (local.get $gv) (local.get $a1v))))
        (local.set $vv (f32x4.add (f32x4.mul (v128.load (local.get $v)) (local.get $b2v))
                                  (f32x4.mul (f32x4.mul (local.get $gv) (local.get $gv)) (local.get $a2v))))
        (v128.store (local.get $m) (local.get $mv))
        (v128.store (local.get $v) (local.get $vv))
        (v128.store (local.get $w)
          (f32x4.add
            (f32x4.mul
              (f32x4.div (f32x4.div (local.get $mv) (local.get $c1v))
                         (f32x4.add (f32x4.sqrt (f32x4.div (local.get $vv) (local.get $c2v))) (local.get $epsv)))
              (local.get $cv))
            (v128.load (local.get $w))))
        (local.set $w (i32.add (local.get $w) (i32.const 16)))
        (local.set $g (i32.add (local.get $g) (i32.const 16)))
        (local.set $m (i32.add (local.get $m) (i32.const 16)))
        (local.set $v (i32.add (local.get $v) (i32.const 16)))
        (br $next))))
)
