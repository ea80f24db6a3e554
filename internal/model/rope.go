package model

import "math"

// ropeInvFreq returns the rotary inverse frequencies [head_dim/2], computed
// in float32 step by step as transformers does, so that positions rotate by
// the same angles as in the reference implementation.
func ropeInvFreq(c *Config) []float32 {
	dim := c.HeadDim
	base := float32(c.Rope.Theta)
	inv := make([]float32, dim/2)
	for i := range inv {
		exponent := float32(2*i) / float32(dim)
		inv[i] = 1 / float32(math.Pow(float64(base), float64(exponent)))
	}
	if c.Rope.Type != "llama3" {
		return inv
	}
	// Llama 3.1 frequency scaling: long wavelengths are divided by factor,
	// short ones kept, and the band in between interpolated smoothly.
	factor := float32(c.Rope.Factor)
	low, high := float32(c.Rope.LowFreqFactor), float32(c.Rope.HighFreqFactor)
	oldLen := float32(c.Rope.OriginalMaxPositionEmbeddings)
	lowWavelen := oldLen / low
	highWavelen := oldLen / high
	for i, f := range inv {
		wavelen := float32(2*math.Pi) / f
		scaled := f
		if wavelen > lowWavelen {
			scaled = f / factor
		}
		if !(wavelen < highWavelen) && !(wavelen > lowWavelen) {
			smooth := (oldLen/wavelen - low) / (high - low)
			scaled = (1-smooth)*scaled/factor + smooth*scaled
		}
		inv[i] = scaled
	}
	return inv
}

func sqrtF(x float64) float64 { return math.Sqrt(x) }
