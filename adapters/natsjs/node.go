package natsjs

import (
	"github.com/nats-io/nats.go"

	"github.com/invictus-network/invictus/routing"
)

// NodeConfig configures the routing part of a node that [NewNode]
// assembles. The zero value of every field means its defaults.
type NodeConfig struct {
	Bus     BusConfig
	Matcher routing.Config
	Service routing.ServiceConfig
	Router  RouterConfig
}

// Node is the routing part of a node: the bus on one connection, the
// routing service over the directory and the router that feeds it.
type Node struct {
	Bus     *Bus
	Service *routing.Service
	Router  *Router
}

// NewNode assembles a node's routing part from its parts: a [Bus] on nc,
// a routing.Service reading dir with a matcher of cfg.Matcher, and a
// [Router] running the service. `invictus serve`, `invictus bench e2e` and
// the tests build their nodes with it. It creates no consumer: call
// Router.EnsureConsumers, then Router.Run. Errors are those of NewBus,
// routing.NewService and NewRouter.
func NewNode(nc *nats.Conn, dir routing.Directory, cfg NodeConfig) (*Node, error) {
	bus, err := NewBus(nc, cfg.Bus)
	if err != nil {
		return nil, err
	}
	svc, err := routing.NewService(bus, dir, routing.NewMatcher(cfg.Matcher), cfg.Service)
	if err != nil {
		return nil, err
	}
	rt, err := NewRouter(bus, svc, cfg.Router)
	if err != nil {
		return nil, err
	}
	return &Node{Bus: bus, Service: svc, Router: rt}, nil
}
