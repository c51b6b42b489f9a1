// Command dbmigrate applies ratestream's schema migrations (the files in
// migrations/, embedded) to DATABASE_URL.
//
//	dbmigrate up     apply every pending migration (the default)
//	dbmigrate down   revert every migration
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/ratestream/ratestream/pkg/config"
	"github.com/ratestream/ratestream/pkg/database"
	"github.com/ratestream/ratestream/pkg/migrate"
)

func main() {
	var cfg struct{ DB database.Config }
	if err := config.Load(&cfg, os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, config.ErrHelp) {
			fmt.Println("\nusage: dbmigrate [up|down]")
			return
		}
		fail(err)
	}
	cmd := "up"
	if len(os.Args) > 1 {
		cmd = os.Args[1]
	}
	switch cmd {
	case "up":
		v, err := migrate.Up(cfg.DB.URL)
		if err != nil {
			fail(err)
		}
		fmt.Printf("schema at version %d\n", v)
	case "down":
		if err := migrate.Down(cfg.DB.URL); err != nil {
			fail(err)
		}
		fmt.Println("schema reverted")
	default:
		fail(fmt.Errorf("unknown command %q: want up or down", cmd))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "dbmigrate:", err)
	os.Exit(1)
}
