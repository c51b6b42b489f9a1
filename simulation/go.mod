module github.com/ratestream/ratestream/simulation

go 1.26.8
