module github.com/ratestream/ratestream/services/windower

go 1.26.8

require github.com/ratestream/ratestream/pkg v0.0.0

require github.com/ratestream/ratestream/tools v0.0.0
