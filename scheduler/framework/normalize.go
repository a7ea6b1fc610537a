package framework

// NormalizeMax scales scores so the highest becomes MaxNodeScore (more is
// better). All zeros stay zero.
func NormalizeMax(scores []int64) {
	var top int64
	for _, s := range scores {
		top = max(top, s)
	}
	if top == 0 {
		return
	}
	for i := range scores {
		scores[i] = scores[i] * MaxNodeScore / top
	}
}

// NormalizeReverse scales scores so the highest becomes MinNodeScore and
// zero becomes MaxNodeScore (fewer is better). All zeros become
// MaxNodeScore.
func NormalizeReverse(scores []int64) {
	var top int64
	for _, s := range scores {
		top = max(top, s)
	}
	for i := range scores {
		if top == 0 {
			scores[i] = MaxNodeScore
			continue
		}
		scores[i] = MaxNodeScore - scores[i]*MaxNodeScore/top
	}
}
