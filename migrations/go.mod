module github.com/ratestream/ratestream/migrations

go 1.26.8
